// Parsers for option values. They run while commander reads the command line, so a bad value is a
// usage error (exit 2) that names the option, before any model is built.
import { InvalidArgumentError } from 'commander';
import type { Device, Precision } from '../options';

function parseNumber(text: string): number {
  // Number('') is 0 and Number('0x10') is 16; accept only plain decimal notation.
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text.trim())) return NaN;
  return Number(text);
}

export function integerBetween(minimum: number, maximum = Infinity): (text: string) => number {
  return (text) => {
    const value = parseNumber(text);
    if (!Number.isInteger(value) || value < minimum || value > maximum) {
      throw new InvalidArgumentError(maximum === Infinity
        ? `Expected an integer of at least ${minimum}.` : `Expected an integer between ${minimum} and ${maximum}.`);
    }
    return value;
  };
}

export const positiveInteger = integerBetween(1);
export const nonNegativeInteger = integerBetween(0);

export function positiveNumber(text: string): number {
  const value = parseNumber(text);
  if (!Number.isFinite(value) || value <= 0) throw new InvalidArgumentError('Expected a number greater than 0.');
  return value;
}

export function nonNegativeNumber(text: string): number {
  const value = parseNumber(text);
  if (!Number.isFinite(value) || value < 0) throw new InvalidArgumentError('Expected a number of at least 0.');
  return value;
}

export function device(text: string): Device {
  if (!/^(auto|cpu|cuda(:\d+)?)$/.test(text)) throw new InvalidArgumentError("Expected auto, cpu, cuda or cuda:N.");
  return text as Device;
}

export function precision(text: string): Precision {
  if (!['auto', 'fp32', 'bf16', 'fp16'].includes(text)) throw new InvalidArgumentError('Expected auto, fp32, bf16 or fp16.');
  return text as Precision;
}

export function optimizer(text: string): 'adam' | 'sgd' {
  if (text !== 'adam' && text !== 'sgd') throw new InvalidArgumentError('Expected adam or sgd.');
  return text;
}

/** `--val`: a fraction of the training set held out, or a dataset (folder or manifest) of its own. */
export type ValidationSpec = { fraction: number } | { dataset: string };

export function validation(text: string): ValidationSpec {
  const value = parseNumber(text);
  if (!Number.isNaN(value)) {
    if (value <= 0 || value >= 1) throw new InvalidArgumentError('Expected a fraction between 0 and 1 (exclusive), or a dataset path.');
    return { fraction: value };
  }
  if (text.length === 0) throw new InvalidArgumentError('Expected a fraction or a dataset path.');
  return { dataset: text };
}

/** The report is HTML (inline SVG, no external files); refuse other extensions rather than write HTML under them. */
export function reportFile(text: string): string {
  if (!/\.html?$/i.test(text)) throw new InvalidArgumentError('Expected a file name ending in .html.');
  return text;
}

export function distributedBackend(text: string): 'gloo' | 'nccl' {
  if (text !== 'gloo' && text !== 'nccl') throw new InvalidArgumentError('Expected gloo or nccl.');
  return text;
}
