// Hand-made report inputs: small enough to check every printed number by eye.
import type { BonReport, BonRow, BonTable } from '../../core/best-of-n.js';
import type { ComparisonTable } from '../../core/comparison.js';

export const comparison: ComparisonTable = {
  name: 'tinymath',
  datasets: ['gsm8k', 'math'],
  rows: [
    { name: 'baseline', kind: 'baseline', accuracy: { gsm8k: 0.779, math: 0.312 }, accuracyStdErr: { gsm8k: 0.0114, math: 0.0207 }, delta: { gsm8k: null, math: null }, deltaStdErr: { gsm8k: null, math: null }, gained: { gsm8k: null, math: null }, lost: { gsm8k: null, math: null }, selectionPrecision: null, meanSelectedScore: null, error: null, runDir: null },
    { name: 'ER-PRM', kind: 'prm', accuracy: { gsm8k: 0.795, math: 0.318 }, accuracyStdErr: { gsm8k: 0.0111, math: 0.0208 }, delta: { gsm8k: 0.016, math: 0.006 }, deltaStdErr: { gsm8k: 0.0075, math: 0.0137 }, gained: { gsm8k: 60, math: 25 }, lost: { gsm8k: 39, math: 22 }, selectionPrecision: 0.824, meanSelectedScore: 0.9123, error: null, runDir: 'runs/er' },
    // Markup in a name must come out as text.
    { name: 'hard <b>&</b> soft', kind: 'prm', accuracy: { gsm8k: 0.781, math: 0.309 }, accuracyStdErr: { gsm8k: 0.0114, math: 0.0207 }, delta: { gsm8k: 0.002, math: -0.003 }, deltaStdErr: { gsm8k: 0.0067, math: 0.013 }, gained: { gsm8k: 40, math: 20 }, lost: { gsm8k: 37, math: 22 }, selectionPrecision: 0.8, meanSelectedScore: 0.8712, error: null, runDir: 'runs/hard' },
    { name: 'ORM', kind: 'orm', accuracy: { gsm8k: null, math: null }, accuracyStdErr: { gsm8k: null, math: null }, delta: { gsm8k: null, math: null }, deltaStdErr: { gsm8k: null, math: null }, gained: { gsm8k: null, math: null }, lost: { gsm8k: null, math: null }, selectionPrecision: null, meanSelectedScore: null, error: 'SFT failed: out of memory | step 12', runDir: 'runs/orm' },
    { name: 'random', kind: 'random', accuracy: { gsm8k: 0.772, math: 0.3 }, accuracyStdErr: { gsm8k: 0.0116, math: 0.0205 }, delta: { gsm8k: -0.007, math: -0.012 }, deltaStdErr: { gsm8k: 0.0075, math: 0.0162 }, gained: { gsm8k: 45, math: 30 }, lost: { gsm8k: 54, math: 36 }, selectionPrecision: 0.7, meanSelectedScore: null, error: null, runDir: 'runs/random' },
  ],
  deltaStdErrForm: 'paired',
};

export const selectedScores: Record<string, number[]> = {
  'ER-PRM': [0.95, 0.91, 0.88, 0.97, 0.72, 0.93, 0.99, 0.85],
  'hard <b>&</b> soft': [0.81, 0.92, 0.64, 0.9, 0.77, 0.88],
  ORM: [],
};

const row = (n: number, best_of_n: number, spread: number, majority: number, weighted: number, pass_at_n: number, problems_short = 0): BonRow => ({
  n,
  best_of_n,
  majority,
  weighted,
  pass_at_n,
  spread,
  problems_short,
});

const table = (results: BonRow[], reward_hacking: BonTable['reward_hacking'], notes: string[]): BonTable => ({
  aggregate: 'min',
  draws: 5,
  seed: 0,
  problems: 100,
  results,
  reward_hacking,
  notes,
});

export const bestOfN: BonReport = {
  name: 'tinymath test',
  problems: 100,
  samplesPerProblem: 8,
  rewardModels: [
    {
      name: 'ER-PRM',
      kind: 'prm',
      tables: [
        table([row(1, 0.41, 0, 0.41, 0.41, 0.41), row(2, 0.46, 0.012, 0.43, 0.45, 0.55), row(4, 0.5, 0.009, 0.47, 0.49, 0.66), row(8, 0.53, 0, 0.49, 0.52, 0.74, 3)], null, [
          '3 problems had fewer than 8 responses; they used all they had.',
        ]),
      ],
    },
    {
      name: 'ORM',
      kind: 'orm',
      tables: [
        table([row(1, 0.41, 0, 0.41, 0.41, 0.41), row(2, 0.44, 0.015, 0.43, 0.44, 0.55), row(4, 0.47, 0.01, 0.47, 0.47, 0.66), row(8, 0.44, 0, 0.49, 0.48, 0.74, 3)], { peak_n: 4, peak: 0.47, last_n: 8, last: 0.44 }, [
          '3 problems had fewer than 8 responses; they used all they had.',
        ]),
      ],
    },
  ],
};
