/**
 * Which preprocessing an evaluation or distillation applies to a model's input: the user's options, else the
 * model's sidecar (<model>.weightlens.json), else defaults derived from the model's declared input.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { PreprocessDto, PreprocessSource } from '../../protocol/evaluate';
import { sidecarPathFor } from '../../protocol/paths';
import type { Dataset } from '../data/dataset';
import { parsePreprocessSidecar, type PreprocessSpec } from '../data/preprocess';
import type { Graph } from '../graph/ir';
import { BadInputError } from '../io/errors';
import type { RunnableModel } from './runnableModel';

/** The graph input fed with images: the first input. Throws when the graph has none. */
export function imageInput(graph: Graph): { name: string; shape: readonly (number | null)[] } {
  const input = graph.inputs[0];
  if (input === undefined) throw new BadInputError('The model has no inputs to feed images to.');
  return input;
}

function toSpec(dto: PreprocessDto, layout: 'NCHW' | 'NHWC'): PreprocessSpec {
  const pad = dto.pad;
  return {
    layout: dto.layout ?? layout,
    ...(dto.scale !== undefined ? { scale: dto.scale } : {}),
    ...(dto.mean ? { mean: dto.mean } : {}),
    ...(dto.std ? { std: dto.std } : {}),
    ...(pad ? { pad: pad.length === 1 ? [pad[0] ?? 0, pad[0] ?? 0, pad[0] ?? 0, pad[0] ?? 0] as const : [pad[0] ?? 0, pad[1] ?? 0, pad[2] ?? 0, pad[3] ?? 0] as const } : {}),
    ...(dto.resize ? { resize: dto.resize } : {}),
  };
}

function toDto(spec: PreprocessSpec): PreprocessDto {
  return {
    layout: spec.layout,
    ...(spec.scale !== undefined ? { scale: spec.scale } : {}),
    ...(spec.mean ? { mean: [...spec.mean] } : {}),
    ...(spec.std ? { std: [...spec.std] } : {}),
    ...(spec.pad ? { pad: [...spec.pad] } : {}),
    ...(spec.resize ? { resize: [spec.resize[0], spec.resize[1]] } : {}),
  };
}

/**
 * The preprocessing to use: `options` when given (missing fields fall back to the defaults below), else the model's
 * sidecar, else defaults: NCHW when an ONNX model's input has the data's channel count second, else NHWC; a bilinear
 * resize when the model's input has a fixed spatial size other than the data's; no scaling.
 */
export async function resolvePreprocessing(model: RunnableModel, dataset: Dataset, options?: PreprocessDto): Promise<{ spec: PreprocessSpec; source: PreprocessSource; dto: PreprocessDto }> {
  const input = imageInput(model.graph);
  const [h, w, c] = dataset.shape;
  const s = input.shape;
  const nchw = model.format === 'onnx' && s.length === 4 && s[1] === c && s[3] !== c;
  const layout: 'NCHW' | 'NHWC' = nchw ? 'NCHW' : 'NHWC';
  const [mh, mw] = nchw ? [s[2], s[3]] : [s[1], s[2]];
  const defaults: PreprocessDto = { layout };
  if (typeof mh === 'number' && typeof mw === 'number' && mh > 0 && mw > 0 && (mh !== h || mw !== w)) defaults.resize = [mh, mw];
  if (options !== undefined && Object.keys(options).length > 0) {
    const spec = toSpec({ ...defaults, ...options }, layout);
    return { spec, source: 'options', dto: toDto(spec) };
  }
  let text: string | undefined;
  try {
    text = await readFile(sidecarPathFor(model.path), 'utf8');
  } catch {
    text = undefined;
  }
  if (text !== undefined) {
    const parsed = parsePreprocessSidecar(text, basename(sidecarPathFor(model.path)));
    const spec: PreprocessSpec = text.includes('"layout"') ? parsed : { ...parsed, layout };
    return { spec, source: 'sidecar', dto: toDto(spec) };
  }
  const spec = toSpec(defaults, layout);
  return { spec, source: 'default', dto: toDto(spec) };
}
