// Seeded pseudo-random numbers that are the same on every platform: a re-run draws exactly what the first run drew.

/** mulberry32: small, fast, and the same sequence on every platform for a seed. */
export function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A 32-bit seed from a seed and a key (a prompt's id): FNV-1a over the seed's two 32-bit halves and the key's
 * UTF-16 code units, then MurmurHash3's finalizer, so keys that differ in one character get unrelated seeds.
 */
export function keyedSeed(seed: number, key: string): number {
  let h = 0x811c9dc5;
  const mix = (x: number) => {
    h = Math.imul(h ^ x, 0x01000193);
  };
  mix(seed >>> 0);
  mix(Math.floor(seed / 2 ** 32) >>> 0);
  for (let i = 0; i < key.length; i++) mix(key.charCodeAt(i));
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The positions 0..n-1 in the random order `seed` fixes (Fisher–Yates), the same on every platform. */
export function seededPermutation(n: number, seed: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  const next = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}
