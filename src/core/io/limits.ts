/**
 * Named limits on hostile input. Every reader checks sizes against these (and against the real file size) before it
 * allocates, so a lying header can never make us allocate or loop without bound. Each limit has one line saying why
 * it is the size it is.
 */
export const LIMITS = {
  /** Largest JSON/text header read whole (safetensors header, model.json, index.json): real ones are < 20 MB. */
  maxHeaderBytes: 100 * 1024 * 1024,
  /**
   * Most tensors listed from one checkpoint: the largest public checkpoints list ~1.5 × 10^5 (mixture-of-experts
   * models in FP8 with a scale tensor per weight); each listed tensor costs about 1 kB of memory and its statistics.
   */
  maxTensors: 300_000,
  /** Most dimensions of a tensor: real models use ≤ 8. */
  maxRank: 16,
  /** Largest element count of a single tensor: 2^40 elements (4 TB as float32) is beyond any real checkpoint. */
  maxTensorElements: 2 ** 40,
  /** Largest buffer decoded into memory at once (one chunk of tensor data, one zip member's metadata). */
  maxChunkBytes: 64 * 1024 * 1024,
  /** Largest in-memory object a container may materialise (a pickle stream, an ONNX/protobuf message, a GGUF string). */
  maxInMemoryBytes: 512 * 1024 * 1024,
  /** Largest decompression ratio accepted for a zip member: real weight files compress < 20×; bombs are ≥ 1000×. */
  maxCompressionRatio: 200,
  /** Largest total uncompressed size of a compressed (deflated) zip member we will inflate. */
  maxInflatedBytes: 4 * 1024 * 1024 * 1024,
  /** Most entries in a zip central directory: a torch.save archive has one per storage. */
  maxZipEntries: 1_000_000,
  /** Deepest nesting of pickle/JSON/protobuf structures: real checkpoints nest < 20 levels. */
  maxNesting: 200,
  /**
   * Deepest JSON in a safetensors header, a sharded index or an artifact's metadata: they nest 3 levels
   * (`{name: {shape: [..]}}`); deeper is hostile and is refused while parsing, before anything walks it.
   */
  maxHeaderJsonDepth: 8,
  /** Deepest JSON in a TF.js model.json: Keras topologies of nested models reach ~30 levels. */
  maxModelJsonDepth: 64,
  /** Most shard files a sharded checkpoint may name: the largest public ones have ~200; each stays open while read. */
  maxShards: 10_000,
  /** Most GGUF metadata key/value pairs; real files have < 1000. */
  maxMetadataEntries: 1_000_000,
  /**
   * Most times a strided view may read its storage over (beyond expanded, stride-0 dimensions, which are weighted,
   * not repeated): `unfold`-style overlapping views repeat each element ≤ k² (49 for a 7×7 window); more is hostile.
   */
  maxViewRepeat: 1024,
} as const;
