/** Parsers for manifest text: each turns lines into (path, label token) records, or problems with line numbers. */
import type { Problem } from './dataset';

export interface ManifestRecord {
  line: number;
  path: string;
  /** Absent on UCF101 test lists, where the class folder names the label. */
  label?: string;
}

export interface ParsedManifest {
  records: ManifestRecord[];
  problems: Problem[];
}

function textLines(text: string): string[] {
  return text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
}

/**
 * `path label` per line. The label is the last whitespace-separated token, so paths may hold spaces.
 * Blank lines and lines starting with `#` are skipped.
 */
export function parseLines(text: string, requireLabel: boolean): ParsedManifest {
  const records: ManifestRecord[] = [];
  const problems: Problem[] = [];
  textLines(text).forEach((raw, index) => {
    const line = index + 1;
    const content = raw.trim();
    if (content.length === 0 || content.startsWith('#')) return;
    const match = /^(.*\S)\s+(\S+)$/.exec(content);
    if (match !== null) {
      records.push({ line, path: match[1], label: match[2] });
    } else if (!requireLabel) {
      records.push({ line, path: content });
    } else {
      problems.push({ line, message: `expected "<path> <label>" but found "${content}"` });
    }
  });
  return { records, problems };
}

interface CsvRow {
  line: number;
  fields: string[];
}

/** RFC 4180: quoted fields may hold commas, doubled quotes and line breaks. */
function csvRows(text: string, problems: Problem[]): CsvRow[] {
  const rows: CsvRow[] = [];
  const source = text.replace(/^\uFEFF/, '');
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  let fieldStarted = false;
  const endRow = (): void => {
    fields.push(field);
    if (fields.length > 1 || fields[0].trim().length > 0) rows.push({ line: rowLine, fields });
    fields = [];
    field = '';
    fieldStarted = false;
  };
  for (let index = 0; index < source.length; index += 1) {
    const character = source[index];
    if (quoted) {
      if (character === '"' && source[index + 1] === '"') {
        field += '"';
        index += 1;
      } else if (character === '"') {
        quoted = false;
      } else {
        if (character === '\n') line += 1;
        field += character;
      }
    } else if (character === '"' && !fieldStarted) {
      quoted = true;
      fieldStarted = true;
    } else if (character === ',') {
      fields.push(field);
      field = '';
      fieldStarted = false;
    } else if (character === '\n' || character === '\r') {
      if (character === '\r' && source[index + 1] === '\n') index += 1;
      endRow();
      line += 1;
      rowLine = line;
    } else {
      field += character;
      fieldStarted = true;
    }
  }
  if (quoted) problems.push({ line: rowLine, message: 'unterminated quoted field' });
  endRow();
  return rows;
}

const pathHeaders = ['path', 'video', 'file', 'filename', 'video_path', 'name'];
const labelHeaders = ['label', 'class', 'category', 'class_name', 'classname', 'label_name'];

/**
 * `path,label` rows. A first row whose cells are column names (`path`/`video`/`file`… and
 * `label`/`class`/`category`…) is a header and picks the columns; extra columns are ignored.
 */
export function parseCsv(text: string): ParsedManifest {
  const problems: Problem[] = [];
  const rows = csvRows(text, problems);
  let pathColumn = 0;
  let labelColumn = 1;
  if (rows.length > 0) {
    const header = rows[0].fields.map((cell) => cell.trim().toLowerCase());
    const labelAt = header.findIndex((cell) => labelHeaders.includes(cell));
    if (labelAt >= 0) {
      const pathAt = header.findIndex((cell) => pathHeaders.includes(cell));
      labelColumn = labelAt;
      pathColumn = pathAt >= 0 ? pathAt : labelAt === 0 ? 1 : 0;
      rows.shift();
    }
  }
  const records: ManifestRecord[] = [];
  for (const row of rows) {
    const pathCell = row.fields[pathColumn]?.trim() ?? '';
    const labelCell = row.fields[labelColumn]?.trim() ?? '';
    if (pathCell.length === 0 || labelCell.length === 0) {
      problems.push({ line: row.line, message: `expected "<path>,<label>" but found "${row.fields.join(',')}"` });
    } else {
      records.push({ line: row.line, path: pathCell, label: labelCell });
    }
  }
  return { records, problems };
}

/** UCF101's classInd.txt: `1 ApplyEyeMakeup` per line, indices 1..K in order. */
export function parseClassIndex(text: string): { classes: string[]; problems: Problem[] } {
  const classes: string[] = [];
  const problems: Problem[] = [];
  const { records, problems: lineProblems } = parseLines(text, true);
  problems.push(...lineProblems);
  for (const record of records) {
    // In classInd.txt the index comes first: "<index> <name>".
    const match = /^(\d+)\s+(\S.*)$/.exec(`${record.path} ${record.label ?? ''}`.trim());
    if (match === null) {
      problems.push({ line: record.line, message: 'expected "<index> <class name>"' });
      continue;
    }
    const index = Number(match[1]);
    if (index !== classes.length + 1) {
      problems.push({ line: record.line, message: `expected index ${classes.length + 1} but found ${index}` });
      continue;
    }
    classes.push(match[2].trim());
  }
  if (classes.length === 0 && problems.length === 0) problems.push({ message: 'no classes listed' });
  return { classes, problems };
}
