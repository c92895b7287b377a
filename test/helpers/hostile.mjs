// Hostile inputs made by hand: playlists and lists that name other files, an MP4 whose header
// understates its length, and a listener that counts the connections a decoder makes.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** A TCP listener on 127.0.0.1 that counts connections (and answers none of them). */
export async function connectionCounter() {
  const sockets = new Set();
  const counter = { connections: 0 };
  const server = net.createServer((socket) => {
    counter.connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  counter.url = `http://127.0.0.1:${server.address().port}`;
  counter.close = () => new Promise((resolve) => {
    for (const socket of sockets) socket.destroy();
    server.close(resolve);
  });
  return counter;
}

export function hlsPlaylist(segment) {
  return `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:4.0,\n${segment}\n#EXT-X-ENDLIST\n`;
}

export function ffconcatList(file) {
  return `ffconcat version 1.0\nfile '${file}'\n`;
}

export function dashManifest(baseUrl) {
  return `<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT4S" minBufferTime="PT1S"
  profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">
  <Period>
    <AdaptationSet mimeType="video/mp4">
      <Representation id="0" bandwidth="100000" width="64" height="48" codecs="avc1.42c00a">
        <BaseURL>${baseUrl}/clip.mp4</BaseURL>
        <SegmentBase indexRange="0-100"><Initialization range="0-100"/></SegmentBase>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
`;
}

const containers = new Set(['moov', 'trak', 'mdia', 'minf', 'stbl', 'edts']);

/** Every box of an ISO BMFF file, depth first: { type, start (of the header), body (offset of the payload), end }. */
function boxes(buffer, start = 0, end = buffer.length, found = []) {
  let offset = start;
  while (offset + 8 <= end) {
    let size = buffer.readUInt32BE(offset);
    const type = buffer.toString('latin1', offset + 4, offset + 8);
    let body = offset + 8;
    if (size === 1) {
      size = Number(buffer.readBigUInt64BE(offset + 8));
      body += 8;
    } else if (size === 0) {
      size = end - offset;
    }
    found.push({ type, start: offset, body, end: offset + size });
    if (containers.has(type)) boxes(buffer, body, offset + size, found);
    offset += size;
  }
  return found;
}

/** Scales a version-0 or version-1 duration field at `offset` (v0) / `offset1` (v1) of a full box. */
function scaleDuration(buffer, box, offset0, offset1, factor) {
  const version = buffer[box.body];
  if (version === 1) {
    const at = box.body + offset1;
    buffer.writeBigUInt64BE(BigInt(Math.max(1, Math.floor(Number(buffer.readBigUInt64BE(at)) / factor))), at);
  } else {
    const at = box.body + offset0;
    buffer.writeUInt32BE(Math.max(1, Math.floor(buffer.readUInt32BE(at) / factor)), at);
  }
}

/**
 * Rewrites an MP4 (written without an edit list) so that its header claims `factor` times fewer
 * frames and a `factor` times shorter duration than it holds: the durations of mvhd, tkhd and mdhd,
 * and the sample counts of stts. The samples themselves (stsz, stco) are untouched, so a demuxer
 * still reads every frame.
 */
export function understateMp4(source, target, factor) {
  const buffer = fs.readFileSync(source);
  for (const box of boxes(buffer)) {
    if (box.type === 'mvhd') scaleDuration(buffer, box, 16, 24, factor);
    if (box.type === 'tkhd') scaleDuration(buffer, box, 20, 28, factor);
    if (box.type === 'mdhd') scaleDuration(buffer, box, 16, 24, factor);
    if (box.type === 'stts') {
      const entries = buffer.readUInt32BE(box.body + 4);
      for (let entry = 0; entry < entries; entry += 1) {
        const at = box.body + 8 + entry * 8;
        buffer.writeUInt32BE(Math.max(1, Math.floor(buffer.readUInt32BE(at) / factor)), at);
      }
    }
  }
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, buffer);
  return target;
}
