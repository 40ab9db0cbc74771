/**
 * The diff job: compares the weights of two checkpoints in any two supported formats. Tensors are paired by name
 * after dropping wrapper prefixes (`module.`, `model.`, `_orig_mod.`), and optionally the rest by shape in file
 * order; each pair of equal shape is streamed chunk by chunk from both files at once (one chunk of each in memory),
 * so memory stays bounded whatever the sizes. Shared by the worker and the CLI.
 */
import { ARTIFACT_KEY } from '../../protocol/artifact';
import {
  NORMALISED_PREFIXES,
  type DeltaStatsDto,
  type DiffArtifactSideDto,
  type DiffMatch,
  type DiffReportDto,
  type DiffSideDto,
  type TensorDiffDto,
  type TensorDiffStatus,
} from '../../protocol/diff';
import { isIntegerDtype } from '../../protocol/inspect';
import { ensureBackend } from '../backend/tfjsBackend';
import {
  openCompressedArtifact,
  type CompressedArtifact,
  type CompressedTensorInfo,
} from '../baselines/compressedArtifact';
import { withCheckpoint } from '../formats/sourceSize';
import { BadInputError, CheckpointFormatError, throwIfAborted } from '../io/errors';
import { quote } from '../io/text';
import { decodeValues, DTYPE_BYTES, encodeValues, isDType, type ValueChunk } from '../tensors/dtype';
import { DEFAULT_CHUNK_ELEMENTS, type TensorEntry, type ValueStreamOptions } from '../tensors/tensor';

/** Elements per chunk read from each side (1 Mi: 8 MB as float64 on each side at most). */
export const DIFF_CHUNK_ELEMENTS = 1024 * 1024;

/** What a comparison covers. */
export interface DiffOptions {
  /** Pairing: by normalised name (default), or by name and then the rest by shape in file order. */
  readonly match?: DiffMatch;
  /**
   * Also compare integer and boolean tensors (BatchNorm step counters, ONNX shape constants). Off by default: they
   * are bookkeeping that formats keep differently (torch.save keeps `num_batches_tracked`, ONNX export drops it and
   * adds shape constants), not weights.
   */
  readonly includeIntegers?: boolean;
  /**
   * Renaming rules for A's tensor names, applied before matching, each `FROM=TO` (`--map`): a FROM ending in `.` is
   * a prefix (`features.=backbone.` turns `features.0.weight` into `backbone.0.weight`), any other FROM an exact
   * name. An exact rule wins over a prefix, a longer prefix over a shorter; a rule is tried on the name as stored,
   * then on the name without its wrapper prefixes. Parsed by `parseNameMap` (BadInputError for bad syntax).
   */
  readonly map?: readonly string[];
}

/** One parsed `FROM=TO` rule of `DiffOptions.map`. */
export interface NameMapRule {
  /** The rule as given. */
  readonly rule: string;
  readonly from: string;
  readonly to: string;
  /** True when `from` ends in `.`: it rewrites a prefix; else it renames one exact name. */
  readonly prefix: boolean;
}

/**
 * Parses `FROM=TO` renaming rules (split at the first `=`). Throws BadInputError (one sentence) for a rule without
 * `=` or with an empty FROM, an exact name mapped to nothing, a prefix mapped to a non-empty TO not ending in `.`,
 * or a FROM given twice.
 */
export function parseNameMap(specs: readonly string[]): NameMapRule[] {
  const rules: NameMapRule[] = [];
  const seen = new Set<string>();
  for (const rule of specs) {
    const at = rule.indexOf('=');
    const example = 'e.g. features.=backbone. or fc.weight=head.weight';
    if (at <= 0)
      throw new BadInputError(
        `The renaming rule ${JSON.stringify(rule)} is not FROM=TO with a tensor name or a prefix ending in '.' as FROM, ${example}.`,
        { option: 'map' },
      );
    const from = rule.slice(0, at);
    const to = rule.slice(at + 1);
    const prefix = from.endsWith('.');
    if (!prefix && to === '')
      throw new BadInputError(
        `The renaming rule ${JSON.stringify(rule)} maps the tensor ${JSON.stringify(from)} to an empty name; give its new name after '=', ${example}.`,
        { option: 'map' },
      );
    if (prefix && to !== '' && !to.endsWith('.'))
      throw new BadInputError(
        `The renaming rule ${JSON.stringify(rule)} maps the prefix ${JSON.stringify(from)} to ${JSON.stringify(to)}, which does not end in '.'; a prefix maps to a prefix ending in '.' (or to nothing), ${example}.`,
        { option: 'map' },
      );
    if (seen.has(from))
      throw new BadInputError(`The renaming rules give ${JSON.stringify(from)} twice; keep one rule per FROM.`, {
        option: 'map',
      });
    seen.add(from);
    rules.push({ rule, from, to, prefix });
  }
  return rules;
}

/** The rule of `rules` that applies to `name` (exact first, then the longest prefix), or undefined. */
function ruleFor(rules: readonly NameMapRule[], name: string): NameMapRule | undefined {
  let best: NameMapRule | undefined;
  for (const r of rules) {
    if (!r.prefix && r.from === name) return r;
    if (
      r.prefix &&
      name.startsWith(r.from) &&
      name.length > r.from.length &&
      (!best || r.from.length > best.from.length)
    )
      best = r;
  }
  return best;
}

/**
 * `name` renamed by `rules` (tried on the name as stored, then on its normalised form), and the rule used; the name
 * unchanged and no rule when none applies.
 */
export function mapTensorName(
  rules: readonly NameMapRule[],
  name: string,
): { name: string; rule: NameMapRule | undefined } {
  for (const candidate of [name, normaliseTensorName(name)]) {
    const r = ruleFor(rules, candidate);
    if (r !== undefined) return { name: r.prefix ? r.to + candidate.slice(r.from.length) : r.to, rule: r };
  }
  return { name, rule: undefined };
}

/** Callbacks of a comparison. */
export interface DiffCallbacks {
  readonly signal?: AbortSignal;
  /** Before each pair's values are compared: its 0-based index among the pairs, their count, and A's name. */
  onPair?(index: number, total: number, name: string): void;
  /**
   * After each chunk of values compared (at most 1 Mi elements): elements compared so far and the total the
   * value-compared pairs hold (both whole numbers, `done` ≤ `total`), for progress within big tensors.
   */
  onValues?(done: number, total: number): void;
}

/** `name` without any leading `module.`, `model.` or `_orig_mod.` (repeatedly: `module.model.x` → `x`). */
export function normaliseTensorName(name: string): string {
  let out = name;
  for (;;) {
    const prefix = NORMALISED_PREFIXES.find((p) => out.startsWith(p) && out.length > p.length);
    if (prefix === undefined) return out;
    out = out.slice(prefix.length);
  }
}

/** One side of a comparison: its format, its tensors (an artifact's decoded reconstruction) and artifact facts. */
/** One side of a comparison: a checkpoint's tensors, or an artifact's reconstructed tensors. */
export interface DiffSide {
  readonly format: string;
  readonly tensors: readonly TensorEntry[];
  readonly artifact?: DiffArtifactSideDto;
}

/** `values` in slices of at most `maxElements`, checking `signal` between them. */
function* slices(values: ValueChunk, options: ValueStreamOptions): Generator<ValueChunk> {
  const step = Math.max(1, options.maxElements ?? DEFAULT_CHUNK_ELEMENTS);
  for (let at = 0; at < values.length; at += step) {
    throwIfAborted(options.signal);
    yield values.subarray(at, at + step);
  }
}

/**
 * A represented tensor's values: decoded when the stream starts (this tensor alone, in memory while it is read),
 * rounded to its original dtype where that is narrower than float32, as decompression writes it.
 */
async function* representedValues(
  artifact: CompressedArtifact,
  t: CompressedTensorInfo,
  options: ValueStreamOptions,
): AsyncGenerator<ValueChunk> {
  throwIfAborted(options.signal);
  const decoded = await artifact.reconstructTensor(t.name);
  if (decoded === undefined)
    throw new CheckpointFormatError(`${artifact.path}: represented tensor ${quote(t.name)} has no stored layer.`);
  const dtype = t.dtype;
  const narrower = isDType(dtype) && dtype !== 'F32' && dtype !== 'F64';
  yield* slices(narrower ? decodeValues(dtype, encodeValues(dtype, decoded)) : decoded, options);
}

/** A verbatim tensor's values, decoded from its stored bytes chunk by chunk (≤ 16 MiB, whole elements). */
async function* verbatimValues(
  artifact: CompressedArtifact,
  t: CompressedTensorInfo,
  options: ValueStreamOptions,
): AsyncGenerator<ValueChunk> {
  const dtype = t.storedDtype ?? 'F32';
  for await (const bytes of artifact.verbatimBytes(t.name, options.signal))
    yield* slices(decodeValues(dtype, bytes), options);
}

/** A tensor of an artifact as the reconstruction holds it: the original name, dtype and shape, decoded values. */
function reconstructedEntry(artifact: CompressedArtifact, t: CompressedTensorInfo): TensorEntry {
  const params = t.shape.reduce((n, d) => n * d, 1);
  return {
    name: t.name,
    dtype: t.dtype,
    shape: t.shape,
    params,
    bytes: params * (isDType(t.dtype) ? DTYPE_BYTES[t.dtype] : 4),
    values: (options = {}) =>
      t.stored === 'represented' ? representedValues(artifact, t, options) : verbatimValues(artifact, t, options),
  };
}

/**
 * Opens `path` as a side of a comparison and runs `body` with it, closing it whatever `body` does. A Weight Lens
 * compression artifact (NeRN or baseline: safetensors with `weight_lens` metadata) is its reconstruction: each
 * represented tensor is decoded in memory when its values are read, one tensor at a time (no temporary file, so
 * nothing to clean up and nothing written beside the user's files); a NeRN artifact first initialises the tfjs
 * backend its predictor runs on.
 */
export async function withDiffSide<T>(
  path: string,
  signal: AbortSignal | undefined,
  body: (side: DiffSide) => Promise<T>,
): Promise<T> {
  return withCheckpoint(path, signal, async (checkpoint) => {
    if (checkpoint.format !== 'safetensors' || !Object.hasOwn(checkpoint.metadata, ARTIFACT_KEY))
      return body({ format: checkpoint.format, tensors: checkpoint.tensors });
    const artifact = await openCompressedArtifact(path);
    try {
      if (artifact.method === 'nern') await ensureBackend('auto');
      throwIfAborted(signal);
      return await body({
        format: checkpoint.format,
        tensors: artifact.tensors.map((t) => reconstructedEntry(artifact, t)),
        artifact: {
          method: artifact.method,
          sourceName: artifact.source.name,
          represented: artifact.tensors.filter((t) => t.stored === 'represented').length,
        },
      });
    } finally {
      await artifact.close();
    }
  });
}

/**
 * Each tensor's matching key: its normalised (`nameOf`: renamed) name, or its name as `nameOf` gives it where
 * normalising would make two collide.
 */
function keysOf(tensors: readonly TensorEntry[], nameOf: (t: TensorEntry) => string): Map<string, TensorEntry> {
  const counts = new Map<string, number>();
  for (const t of tensors) {
    const k = normaliseTensorName(nameOf(t));
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  const out = new Map<string, TensorEntry>();
  for (const t of tensors) {
    const k = normaliseTensorName(nameOf(t));
    out.set((counts.get(k) ?? 0) > 1 ? nameOf(t) : k, t);
  }
  return out;
}

function side(t: TensorEntry): DiffSideDto {
  return { name: t.name, dtype: t.dtype, shape: [...t.shape] };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Pulls values from a tensor's chunk stream `count` at a time, whatever chunk sizes the reader yields. */
class ValueCursor {
  private readonly iterator: AsyncIterator<ValueChunk>;
  private buffer: ValueChunk = new Float32Array(0);
  private at = 0;

  constructor(entry: TensorEntry, signal: AbortSignal | undefined) {
    const stream = entry.values({ maxElements: DIFF_CHUNK_ELEMENTS, ...(signal ? { signal } : {}) });
    this.iterator = stream[Symbol.asyncIterator]();
  }

  /** Up to `count` next values (fewer only at the end; empty when done). */
  async take(count: number): Promise<ValueChunk> {
    while (this.at >= this.buffer.length) {
      const next = await this.iterator.next();
      if (next.done === true) return new Float32Array(0);
      this.buffer = next.value;
      this.at = 0;
    }
    const end = Math.min(this.buffer.length, this.at + count);
    const out = this.buffer.subarray(this.at, end);
    this.at = end;
    return out;
  }

  async close(): Promise<void> {
    await this.iterator.return?.();
  }
}

/** Running sums of a comparison, in float64. */
interface DeltaSums {
  count: number;
  maxAbs: number;
  sumDelta2: number;
  sumA2: number;
  sumB2: number;
  dot: number;
  nonFinite: number;
  identical: boolean;
}

function emptySums(): DeltaSums {
  return { count: 0, maxAbs: 0, sumDelta2: 0, sumA2: 0, sumB2: 0, dot: 0, nonFinite: 0, identical: true };
}

/**
 * Streams tensors `a` and `b` (equal element counts) side by side, calling `onChunks` with aligned chunks of at most
 * `DIFF_CHUNK_ELEMENTS` values of each (views valid only during the call), one chunk of each in memory. Checks
 * `signal` between chunks; a BadInputError when a tensor yields fewer values than its shape holds. Shared by the
 * comparison and the Δ histogram (diffHistogram.ts).
 */
export async function forEachChunkPair(
  a: TensorEntry,
  b: TensorEntry,
  signal: AbortSignal | undefined,
  onChunks: (xa: ValueChunk, xb: ValueChunk) => void,
): Promise<void> {
  const ca = new ValueCursor(a, signal);
  const cb = new ValueCursor(b, signal);
  try {
    let left = a.params;
    while (left > 0) {
      throwIfAborted(signal);
      const xa = await ca.take(Math.min(left, DIFF_CHUNK_ELEMENTS));
      const xb = await cb.take(xa.length);
      if (xa.length === 0 || xb.length !== xa.length)
        throw new BadInputError(`Tensor ${JSON.stringify(a.name)} yielded fewer values than its shape holds.`);
      onChunks(xa, xb);
      left -= xa.length;
    }
  } finally {
    await ca.close();
    await cb.close();
  }
}

/** Streams both tensors (equal element counts) and accumulates the sums of B − A. */
async function compareValues(
  a: TensorEntry,
  b: TensorEntry,
  signal: AbortSignal | undefined,
  onChunk: (elements: number) => void,
): Promise<DeltaSums> {
  const sums = emptySums();
  await forEachChunkPair(a, b, signal, (xa, xb) => {
    for (let i = 0; i < xa.length; i++) {
      const u = xa[i] as number;
      const v = xb[i] as number;
      if (!Object.is(u, v) && !(u === 0 && v === 0)) sums.identical = false;
      if (!Number.isFinite(u) || !Number.isFinite(v)) {
        if (!Object.is(u, v)) sums.nonFinite++;
        continue;
      }
      const d = v - u;
      const abs = Math.abs(d);
      if (abs > sums.maxAbs) sums.maxAbs = abs;
      sums.sumDelta2 += d * d;
      sums.sumA2 += u * u;
      sums.sumB2 += v * v;
      sums.dot += u * v;
    }
    sums.count += xa.length;
    onChunk(xa.length);
  });
  return sums;
}

function statsOf(s: DeltaSums): DeltaStatsDto {
  const finite = s.count - s.nonFinite;
  return {
    count: s.count,
    maxAbs: s.maxAbs,
    rms: finite > 0 ? Math.sqrt(s.sumDelta2 / finite) : 0,
    relative: s.sumA2 > 0 ? Math.sqrt(s.sumDelta2 / s.sumA2) : s.sumDelta2 === 0 ? 0 : null,
    cosine: s.sumA2 > 0 && s.sumB2 > 0 ? s.dot / Math.sqrt(s.sumA2 * s.sumB2) : null,
    nonFinite: s.nonFinite,
  };
}

/** Rank of a status in the worst-first order (lower is worse). */
const STATUS_RANK: Record<TensorDiffStatus, number> = {
  reshaped: 0,
  removed: 1,
  added: 2,
  'dtype-changed': 3,
  changed: 3,
  same: 4,
};

/** Worst first: structural rows, then value changes by relative change (unbounded first), then same; stable. */
function worstFirst(x: TensorDiffDto, y: TensorDiffDto): number {
  const rank = STATUS_RANK[x.status] - STATUS_RANK[y.status];
  if (rank !== 0) return rank;
  const rx = x.delta ? (x.delta.relative ?? Infinity) : 0;
  const ry = y.delta ? (y.delta.relative ?? Infinity) : 0;
  return ry - rx || 0;
}

/** Pairs `a` (named by `nameOfA`) and `b`: by key, then (for `shape`) the rest in file order by equal shape. */
function pairTensors(
  a: readonly TensorEntry[],
  b: readonly TensorEntry[],
  match: DiffMatch,
  nameOfA: (t: TensorEntry) => string,
): { pairs: { a: TensorEntry; b: TensorEntry; by: 'name' | 'shape' }[]; onlyA: TensorEntry[]; onlyB: TensorEntry[] } {
  const keysA = keysOf(a, nameOfA);
  const keysB = keysOf(b, (t) => t.name);
  const pairs: { a: TensorEntry; b: TensorEntry; by: 'name' | 'shape' }[] = [];
  const pairedB = new Set<TensorEntry>();
  const onlyA: TensorEntry[] = [];
  for (const [key, ta] of keysA) {
    const tb = keysB.get(key);
    if (tb === undefined) onlyA.push(ta);
    else {
      pairs.push({ a: ta, b: tb, by: 'name' });
      pairedB.add(tb);
    }
  }
  let onlyB = b.filter((t) => !pairedB.has(t));
  if (match === 'shape') {
    const restA: TensorEntry[] = [];
    let from = 0;
    for (const ta of onlyA) {
      const found = onlyB.findIndex((tb, i) => i >= from && sameShape(ta.shape, tb.shape));
      if (found < 0) {
        restA.push(ta);
        continue;
      }
      const tb = onlyB[found] as TensorEntry;
      pairs.push({ a: ta, b: tb, by: 'shape' });
      pairedB.add(tb);
      from = found + 1;
    }
    onlyB = onlyB.filter((t) => !pairedB.has(t));
    return { pairs, onlyA: restA, onlyB };
  }
  return { pairs, onlyA, onlyB };
}

/**
 * Compares the checkpoints at `pathA` and `pathB` tensor by tensor. A pair of different shapes is `reshaped`
 * (values not compared); a pair of equal shapes is compared value by value in float64 and is `same` when every
 * element is bit-identical (±0 and NaN at the same places count as equal), else `changed`; it is `dtype-changed`
 * (with its difference) whenever the stored dtypes differ. Tensors that cannot be decoded on either side are compared by
 * header only. Resolves to the report, rows worst first.
 */
export async function diffFiles(
  pathA: string,
  pathB: string,
  options: DiffOptions = {},
  callbacks: DiffCallbacks = {},
): Promise<DiffReportDto> {
  const match = options.match ?? 'name';
  const rules = parseNameMap(options.map ?? []);
  const integers = options.includeIntegers === true;
  const kept = (tensors: readonly TensorEntry[]): TensorEntry[] =>
    integers ? [...tensors] : tensors.filter((t) => !isIntegerDtype(t.dtype));
  const { signal } = callbacks;
  const started = performance.now();
  return withDiffSide(pathA, signal, (ca) =>
    withDiffSide(pathB, signal, async (cb) => {
      const tensorsA = kept(ca.tensors);
      const tensorsB = kept(cb.tensors);
      const mapped = new Map<TensorEntry, { name: string; rule: NameMapRule | undefined }>(
        ca.tensors.map((t) => [t, mapTensorName(rules, t.name)]),
      );
      const renamed = new Map<NameMapRule, number>(rules.map((r) => [r, 0]));
      for (const { rule } of mapped.values()) if (rule) renamed.set(rule, (renamed.get(rule) ?? 0) + 1);
      const { pairs, onlyA, onlyB } = pairTensors(tensorsA, tensorsB, match, (t) => mapped.get(t)?.name ?? t.name);
      const rows: TensorDiffDto[] = [];
      const total = emptySums();
      const compared = (p: { a: TensorEntry; b: TensorEntry }): boolean =>
        sameShape(p.a.shape, p.b.shape) && p.a.notDecodedReason === undefined && p.b.notDecodedReason === undefined;
      const toCompare = pairs.reduce((n, p) => n + (compared(p) ? p.a.params : 0), 0);
      let done = 0;
      for (const [index, p] of pairs.entries()) {
        throwIfAborted(signal);
        callbacks.onPair?.(index, pairs.length, p.a.name);
        const rule = mapped.get(p.a)?.rule;
        const base = { a: side(p.a), b: side(p.b), matchedBy: p.by, ...(rule ? { mappedBy: rule.rule } : {}) };
        if (!sameShape(p.a.shape, p.b.shape)) {
          rows.push({ status: 'reshaped', ...base });
          continue;
        }
        const dtypeDiffers = p.a.dtype !== p.b.dtype;
        if (p.a.notDecodedReason !== undefined || p.b.notDecodedReason !== undefined) {
          rows.push({ status: dtypeDiffers ? 'dtype-changed' : p.a.bytes === p.b.bytes ? 'same' : 'changed', ...base });
          continue;
        }
        const sums = await compareValues(p.a, p.b, signal, (elements) => {
          done += elements;
          callbacks.onValues?.(done, toCompare);
        });
        total.count += sums.count;
        total.nonFinite += sums.nonFinite;
        total.maxAbs = Math.max(total.maxAbs, sums.maxAbs);
        total.sumDelta2 += sums.sumDelta2;
        total.sumA2 += sums.sumA2;
        total.sumB2 += sums.sumB2;
        total.dot += sums.dot;
        const status: TensorDiffStatus = dtypeDiffers ? 'dtype-changed' : sums.identical ? 'same' : 'changed';
        rows.push({ status, ...base, delta: statsOf(sums) });
      }
      for (const t of onlyA) rows.push({ status: 'removed', a: side(t) });
      for (const t of onlyB) rows.push({ status: 'added', b: side(t) });
      rows.sort(worstFirst);
      const counts: Record<TensorDiffStatus, number> = {
        same: 0,
        changed: 0,
        added: 0,
        removed: 0,
        reshaped: 0,
        'dtype-changed': 0,
      };
      for (const r of rows) counts[r.status]++;
      const overall = statsOf(total);
      return {
        a: {
          file: pathA,
          format: ca.format,
          tensors: ca.tensors.length,
          ...(ca.artifact ? { artifact: ca.artifact } : {}),
        },
        b: {
          file: pathB,
          format: cb.format,
          tensors: cb.tensors.length,
          ...(cb.artifact ? { artifact: cb.artifact } : {}),
        },
        match,
        map: rules.map((r) => ({ rule: r.rule, renamed: renamed.get(r) ?? 0 })),
        integerTensorsLeftOut: { a: ca.tensors.length - tensorsA.length, b: cb.tensors.length - tensorsB.length },
        tensors: rows,
        summary: {
          counts,
          identical: counts.same === rows.length,
          compared: total.count,
          maxAbs: overall.maxAbs,
          relative: overall.relative,
          cosine: overall.cosine,
        },
        seconds: (performance.now() - started) / 1000,
      };
    }),
  );
}
