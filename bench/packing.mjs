// (3) CNN work per batch: frames our packed path embeds vs B x maxT for the padded approach, on one
// batch of 8 clips with lengths 4 to 32 at 64 px, with the time each takes. The reference runs the
// seed's model both ways (packed, and VGG over the padded [maxT, B, ...] tensor) to show the same logits.
//   node bench/packing.mjs --work FOLDER [--rounds 2] [--out FILE]
import { argument, loadAverage, machine, median, readFixture, round, startOurs, startReference, writeResults } from './common.mjs';

const rounds = argument('rounds', 2);
const fixture = readFixture();
const { lengths, size, frames } = fixture.packed;

const loadBefore = loadAverage();
const ours = await startOurs();
const reference = await startReference();
try {
  for (const side of [ours, reference]) await side.request({ op: 'load', checkpoint: fixture.checkpoint });
  const request = { frames, lengths, size };
  await ours.request({ op: 'packed', ...request });
  await reference.request({ op: 'padded', ...request });
  const seconds = { ours: [], referencePacked: [], referencePadded: [] };
  let framesEmbedded;
  let referenceAnswer;
  for (let index = 0; index < rounds; index += 1) {
    const steps = [
      async () => {
        const answer = await ours.request({ op: 'packed', ...request });
        seconds.ours.push(answer.seconds);
        framesEmbedded = answer.framesEmbedded;
      },
      async () => {
        referenceAnswer = await reference.request({ op: 'padded', ...request });
        seconds.referencePacked.push(referenceAnswer.packed.seconds);
        seconds.referencePadded.push(referenceAnswer.padded.seconds);
      },
    ];
    if (index % 2 === 1) steps.reverse();
    for (const step of steps) await step();
    console.log(`packing round ${index + 1}/${rounds}: ours ${seconds.ours.at(-1).toFixed(2)} s, reference packed ` +
      `${seconds.referencePacked.at(-1).toFixed(2)} s, padded ${seconds.referencePadded.at(-1).toFixed(2)} s`);
  }
  const padded = lengths.length * Math.max(...lengths);
  writeResults('packing', {
    benchmark: 'CNN work per batch: packed vs padded',
    batch: { lengths, frameSize: size },
    framesEmbedded: { oursPacked: framesEmbedded, referencePacked: referenceAnswer.packed.frames, padded,
      paddedOverPacked: round(padded / framesEmbedded, 3) },
    medianSeconds: Object.fromEntries(Object.entries(seconds).map(([name, values]) => [name, round(median(values), 3)])),
    roundsSeconds: Object.fromEntries(Object.entries(seconds).map(([name, values]) => [name, values.map((value) => round(value, 3))])),
    paddedOverOursTime: round(median(seconds.referencePadded.map((value, at) => value / seconds.ours[at])), 3),
    referenceLogitDifferencePackedVsPadded: referenceAnswer.maxLogitDifference,
    machine: { ...machine(), loadAverageBefore: loadBefore, loadAverageAfter: loadAverage() },
    date: new Date().toISOString(),
  });
} finally {
  await ours.close();
  await reference.close();
}
