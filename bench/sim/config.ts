// The simulated GPUs' parameters (bench/paper-scale.yaml), one zod schema; every default says where it comes from.
// "Assumed" marks a number that is an estimate, not a measurement anyone published for exactly this setup.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { ROOT } from '../harness.js';

const pos = z.number().positive();

export const SimConfig = z.strictObject({
  /** A vLLM replica of a 7B policy on one H100 80GB (bf16, tensor-parallel 1). */
  policy: z
    .strictObject({
      /**
       * Decode step time at batch b: stepBaseMs + b × stepPerSeqMs. The base is one pass over ~14.5 GB of bf16
       * weights at the H100 SXM's 3.35 TB/s (4.3 ms) plus kernel overheads: assumed 7 ms, ~140 tokens/s for one
       * sequence. The per-sequence term (attention over the KV cache, sampling) is set so that a full batch of 256
       * decodes ~10,300 tokens/s — between TensorRT-LLM's published LLaMA-7B figures on one H100 (9,193 output
       * tokens/s for 128-in/128-out and 5,367 for 128-in/2048-out at batch 64, FP8; TensorRT-LLM v0.5.0
       * docs/source/performance.md) and the ~12,500 tokens/s reported for vLLM with Llama-3.1-8B bf16 on one H100
       * (third-party collection, morphllm.com/vllm-benchmarks). Assumed to within a factor of ~1.5.
       */
      stepBaseMs: pos.default(7),
      stepPerSeqMs: pos.default(0.07),
      /** Sequences decoded together: vLLM's default max_num_seqs (256); KV memory is assumed to hold them at ≤ 2K tokens each. */
      maxBatch: z.int().positive().default(256),
      /**
       * Prompt tokens per second (prefill, compute-bound): 2 × 7.2e9 FLOPs per token at ~30% of the H100's 989 dense
       * bf16 TFLOPs ≈ 20,000 tokens/s. Assumed (the MFU).
       */
      prefillTokensPerSecond: pos.default(20_000),
      /** Prompt prefixes (cut at line ends) a replica's prefix cache holds (vLLM --enable-prefix-caching): assumed. */
      prefixCacheEntries: z.int().positive().default(50_000),
      /** Seconds from `vllm serve` to healthy for a 7B checkpoint (weights load, CUDA graphs): assumed. */
      startupSeconds: pos.default(90),
      maxModelLen: z.int().positive().default(4096),
    })
    .prefault({}),
  /** The PRM server: a 7B forward pass over question + steps, one request at a time per GPU. */
  prm: z
    .strictObject({
      /** Same forward cost as the policy's prefill (a PRM pass is a prefill): assumed 20,000 tokens/s per GPU. */
      tokensPerSecond: pos.default(20_000),
      /** Per request (tokenization, padding, Python): assumed. */
      requestOverheadMs: z.number().nonnegative().default(5),
    })
    .prefault({}),
  /** Full SFT of a 7B model under ZeRO-3 on all the run's GPUs. */
  sft: z
    .strictObject({
      /**
       * ~8 × 7.2e9 FLOPs per token (forward + backward, plus recomputation with gradient checkpointing) at ~28% of
       * 989 TFLOPs ≈ 4,000 tokens/s per GPU, ZeRO-3 communication included. Assumed.
       */
      tokensPerSecondPerGpu: pos.default(4_000),
      /** Launch, load and shard the 7B weights: assumed. */
      startupSeconds: pos.default(180),
      /** Write the final 14 GB bf16 checkpoint (ZeRO-3 gather): assumed. */
      saveSeconds: pos.default(60),
    })
    .prefault({}),
  /** Response lengths: the real solutions' lengths in ../shared/data (a relative path is from the project root). */
  lengths: z
    .strictObject({
      gsm8k: z.string().default('../shared/data/gsm8k/train.jsonl'),
      math: z.string().default('../shared/data/math500/test.jsonl'),
      /**
       * Characters per token of the solutions, measured with the SmolLM2 tokenizer (digits split one by one, like
       * Mistral's and DeepSeek's): GSM8K train 2.30, MATH500 2.29 over their solutions.
       */
      charsPerToken: pos.default(2.3),
      /** Of the questions: GSM8K 3.90, MATH500 2.57 (same tokenizer); one mean. */
      questionCharsPerToken: pos.default(3.2),
      /** Reference solutions are shorter than a 7B model's sampled CoT: scale them (1 = the references as they are). */
      scale: pos.default(1),
      /** Share of sampled answers that are right (the policy's train accuracy): assumed. */
      correctShare: z.number().min(0).max(1).default(0.6),
    })
    .prefault({}),
  /** Real milliseconds between the simulators' time steps. */
  tickMs: z.int().positive().default(20),
});
export type SimConfig = z.infer<typeof SimConfig>;

/** The config file (YAML or JSON), validated; a missing file gives the defaults. */
export function loadSimConfig(path: string | undefined): SimConfig {
  const parsed = SimConfig.safeParse(path ? (parse(readFileSync(path, 'utf8')) ?? {}) : {});
  if (!parsed.success) {
    throw new Error(`${path}: invalid simulator config\n${parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n')}`);
  }
  const { lengths } = parsed.data;
  return { ...parsed.data, lengths: { ...lengths, gsm8k: resolve(ROOT, lengths.gsm8k), math: resolve(ROOT, lengths.math) } };
}

/** What a simulator process is told: the config and the time compression. */
export interface SimRuntime {
  sim: SimConfig;
  /** Simulated seconds per real second. */
  compression: number;
}
