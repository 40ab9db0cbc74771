/**
 * The Netron attachment job: a checkpoint's per-tensor statistics (the inspect job's, src/core/jobs/inspect.ts) and,
 * for every 2-D matrix and convolution, WeightWatcher's spectral metrics (the spectra job's, src/core/jobs/spectra.ts),
 * written as one `netron:attachment` JSON file, atomically. Netron (source/view.js, `metadata.Attachment`) reads
 * such a file when it is opened over a model, keys its rows by `kind::target` (target: the tensor's name) and shows
 * them in the tensor's sidebar under Metadata and Metrics, so a Netron user sees the figures beside the graph.
 * Shared by the worker and the CLI.
 */
import { extname } from 'node:path';
import {
  defaultAttachmentPath,
  NETRON_ATTACHMENT_SIGNATURE,
  type NetronAttachmentDto,
  type NetronAttachmentOptionsDto,
  type NetronAttachmentProgressDto,
  type NetronAttachmentReportDto,
  type NetronAttachmentRowDto,
} from '../../protocol/convert';
import type { CheckpointHeaderDto, InspectReportDto } from '../../protocol/inspect';
import type { LayerSpectrumDto, SpectraReportDto } from '../../protocol/spectra';
import { writeAtomically } from '../io/atomicFile';
import { BadInputError } from '../io/errors';
import { refuseSameFile } from './convert';
import { inspectFile, type InspectOptions } from './inspect';
import { spectraOfFile } from './spectra';

/** Callbacks of an attachment export. */
export interface NetronAttachmentCallbacks {
  readonly signal?: AbortSignal;
  /** Where statistics are computed (the inspect job's option: e.g. the statistics thread pool). */
  readonly parallel?: InspectOptions['parallel'];
  /** Names the program in the file's `producer` (default `Weight Lens`). */
  readonly producer?: string;
  /** As each tensor's statistics or each layer's spectrum completes. */
  onProgress?(progress: NetronAttachmentProgressDto): void;
}

/**
 * Statistics rows of one tensor, named as Netron names the figures it computes itself (min, max, mean, std,
 * sparsity), so ours replace Netron's, plus zeros, abs max, norm (L2) and non-finite count. Moments of a tensor
 * without finite values are null in the report and left out here (JSON has no NaN).
 */
function statisticsRows(tensor: InspectReportDto['tensors'][number]): NetronAttachmentRowDto[] {
  const s = tensor.stats;
  if (s === undefined) return [];
  const row = (name: string, value: number | null, type?: 'percentage'): NetronAttachmentRowDto[] =>
    value === null || !Number.isFinite(value)
      ? []
      : [{ kind: 'tensor', target: tensor.name, name, value, ...(type ? { type } : {}) }];
  return [
    ...row('min', s.min),
    ...row('max', s.max),
    ...row('mean', s.mean),
    ...row('std', s.std),
    ...row('sparsity', tensor.params > 0 ? s.zeros / tensor.params : null, 'percentage'),
    ...row('zeros', s.zeros),
    ...row('abs max', s.absMax),
    ...row('norm', s.l2),
    ...row('non-finite', s.nonFinite),
  ];
}

/** Spectral rows of one layer, under WeightWatcher's column names; a null (failed fit) is left out. */
function spectrumRows(layer: LayerSpectrumDto): NetronAttachmentRowDto[] {
  const row = (name: string, value: number | null): NetronAttachmentRowDto[] =>
    value === null || !Number.isFinite(value) ? [] : [{ kind: 'tensor', target: layer.name, name, value }];
  return [
    ...row('alpha', layer.alpha),
    ...row('alpha_weighted', layer.alphaWeighted),
    ...row('stable_rank', layer.stableRank),
    ...row('log_spectral_norm', layer.logSpectralNorm),
    ...row('log_norm', layer.logNorm),
    ...row('mp_softrank', layer.mpSoftRank),
    ...row('spectral_norm', layer.sigmaMax),
  ];
}

/** How a layer's spectrum was computed, in words, for its metadata row. */
function spectrumMethod(layer: LayerSpectrumDto): string {
  const what =
    layer.kind === 'conv' ? `${layer.slices} slices of ${layer.n}×${layer.m} pooled` : `${layer.n}×${layer.m}`;
  return layer.method.kind === 'exact'
    ? `exact SVD, ${what}`
    : `top ${layer.method.rank} of ${layer.m} singular values per slice (randomized SVD), ${what}`;
}

/**
 * The attachment document for an inspection `report` and, when given, its spectral analysis `spectra` of the same
 * file: model rows (target `''`: tensors, parameters, source format), then per tensor in file order its statistics
 * rows and, for an analysed layer, its spectral rows; metadata rows give each tensor's layer kind, each spectrum's
 * method and WeightWatcher's reading of α, and why a tensor had no spectrum. Pure.
 */
export function netronAttachmentOf(
  report: InspectReportDto,
  spectra: SpectraReportDto | undefined,
  producer = 'Weight Lens',
): NetronAttachmentDto {
  const byName = new Map((spectra?.layers ?? []).map((l) => [l.name, l]));
  const skipped = new Map((spectra?.skipped ?? []).map((s) => [s.name, s.reason]));
  const metadata: NetronAttachmentRowDto[] = [
    { kind: 'model', target: '', name: 'weight-lens format', value: report.description },
    { kind: 'model', target: '', name: 'weight-lens file', value: report.file.split(/[/\\]/).pop() ?? report.file },
  ];
  const metrics: NetronAttachmentRowDto[] = [
    { kind: 'model', target: '', name: 'tensors', value: report.totals.tensors },
    { kind: 'model', target: '', name: 'parameters', value: report.totals.params },
  ];
  for (const tensor of report.tensors) {
    metadata.push({ kind: 'tensor', target: tensor.name, name: 'layer kind', value: tensor.kind });
    metrics.push(...statisticsRows(tensor));
    const layer = byName.get(tensor.name);
    if (layer !== undefined) {
      metrics.push(...spectrumRows(layer));
      metadata.push({ kind: 'tensor', target: tensor.name, name: 'spectrum', value: spectrumMethod(layer) });
      if (layer.warning !== undefined)
        metadata.push({ kind: 'tensor', target: tensor.name, name: 'alpha reading', value: layer.warning });
    } else {
      const reason = skipped.get(tensor.name);
      if (reason !== undefined)
        metadata.push({ kind: 'tensor', target: tensor.name, name: 'spectrum', value: `none: ${reason}` });
    }
  }
  return { signature: NETRON_ATTACHMENT_SIGNATURE, producer, metadata, metrics };
}

/**
 * Writes the Netron attachment of the checkpoint at `input` to `options.out` (default: `defaultAttachmentPath`),
 * whole or not at all, and resolves to what it wrote. A BadInputError, before anything is written, when the output
 * does not end in `.json` (Netron opens no other attachment) or is the input itself.
 */
export async function writeNetronAttachment(
  input: string,
  options: NetronAttachmentOptionsDto,
  callbacks: NetronAttachmentCallbacks = {},
): Promise<NetronAttachmentReportDto> {
  const started = performance.now();
  const output = options.out ?? defaultAttachmentPath(input);
  if (extname(output).toLowerCase() !== '.json')
    throw new BadInputError(
      `A Netron attachment must end in .json (Netron opens no other), not ${JSON.stringify(output)}.`,
    );
  await refuseSameFile(input, output);
  const { signal } = callbacks;
  let done = 0;
  let header: CheckpointHeaderDto | undefined;
  let spectraTotal = 0;
  const report = await inspectFile(
    input,
    { bins: 1, ...(signal ? { signal } : {}), ...(callbacks.parallel ? { parallel: callbacks.parallel } : {}) },
    {
      onTensorStats: (index) => {
        const total = header?.tensors.length ?? 0;
        callbacks.onProgress?.({ phase: 'statistics', index: done++, total, name: header?.tensors[index]?.name ?? '' });
      },
      onHeader: (h) => {
        header = h;
      },
    },
  );
  const spectra = options.spectra
    ? await spectraOfFile(
        input,
        { maxRank: options.maxRank, bins: 1 },
        {
          ...(signal ? { signal } : {}),
          onLayer: (index, layer) => {
            callbacks.onProgress?.({ phase: 'spectra', index, total: spectraTotal, name: layer.name });
          },
          onPlan: (layers) => {
            spectraTotal = layers.length;
          },
        },
      )
    : undefined;
  const document = netronAttachmentOf(report, spectra, callbacks.producer);
  await writeAtomically(output, async (handle) => {
    await handle.writeFile(JSON.stringify(document, null, 1) + '\n', 'utf8');
  });
  return {
    input,
    output,
    format: report.format,
    tensors: report.tensors.filter((t) => t.stats !== undefined).length,
    spectra: spectra?.layers.length ?? 0,
    metrics: document.metrics.length,
    metadata: document.metadata.length,
    seconds: (performance.now() - started) / 1000,
  };
}
