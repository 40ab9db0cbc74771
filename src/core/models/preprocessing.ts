/**
 * Which preprocessing an evaluation or distillation applies to a model's input: the user's options, else the
 * model's sidecar (<model>.weightlens.json), else defaults derived from the model's declared input; and the check
 * that the preprocessed images fit that input.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { describePreprocess, type PreprocessDto, type PreprocessSource } from '../../protocol/evaluate';
import { sidecarPathFor } from '../../protocol/paths';
import type { Dataset } from '../data/dataset';
import { parsePreprocessSidecar, preprocessedShape, type PreprocessSpec } from '../data/preprocess';
import type { Graph } from '../graph/ir';
import { BadInputError } from '../io/errors';
import { resolveOptionalCompanion } from '../io/companion';
import type { ExecutableModel } from './executableModel';

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
    ...(pad
      ? {
          pad:
            pad.length === 1
              ? ([pad[0] ?? 0, pad[0] ?? 0, pad[0] ?? 0, pad[0] ?? 0] as const)
              : ([pad[0] ?? 0, pad[1] ?? 0, pad[2] ?? 0, pad[3] ?? 0] as const),
        }
      : {}),
    ...(dto.crop ? { crop: dto.crop } : {}),
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
    ...(spec.crop ? { crop: [spec.crop[0], spec.crop[1]] } : {}),
    ...(spec.resize ? { resize: [spec.resize[0], spec.resize[1]] } : {}),
  };
}

/** The model's fixed input size [height, width, channels] in `layout` (undefined where a dimension is dynamic). */
function declaredInput(
  shape: readonly (number | null)[],
  layout: 'NCHW' | 'NHWC',
): [number | undefined, number | undefined, number | undefined] {
  const fixed = (d: number | null | undefined): number | undefined => (typeof d === 'number' && d > 0 ? d : undefined);
  if (shape.length !== 4) return [undefined, undefined, undefined];
  return layout === 'NCHW'
    ? [fixed(shape[2]), fixed(shape[3]), fixed(shape[1])]
    : [fixed(shape[1]), fixed(shape[2]), fixed(shape[3])];
}

/**
 * The preprocessing to use, with where it came from. The first of these that exists is used as it is, never
 * merged with another:
 * - `options` (the user's flags or picks);
 * - the model's sidecar, `<model>.weightlens.json`;
 * - defaults: NCHW when an ONNX model's input has the data's channel count second, else NHWC; no scaling; and a
 *   bilinear resize only when the model's input has a fixed spatial size other than the data's.
 * Only the layout is defaulted when options or the sidecar leave it out. The steps apply in `PREPROCESS_ORDER`.
 * When options or the sidecar give images of another size or channel count than the model's fixed input, this is a
 * `BadInputError` that says what was expected (a resize is never added silently).
 */
export async function resolvePreprocessing(
  model: ExecutableModel,
  dataset: Dataset,
  options?: PreprocessDto,
): Promise<{ spec: PreprocessSpec; source: PreprocessSource; dto: PreprocessDto }> {
  const input = imageInput(model.graph);
  const [h, w, c] = dataset.shape;
  const s = input.shape;
  const nchw = model.format === 'onnx' && s.length === 4 && s[1] === c && s[3] !== c;
  const layout: 'NCHW' | 'NHWC' = nchw ? 'NCHW' : 'NHWC';
  let spec: PreprocessSpec;
  let source: PreprocessSource;
  if (options !== undefined && Object.keys(options).length > 0) {
    spec = toSpec(options, layout);
    source = 'options';
  } else {
    const sidecar = sidecarPathFor(model.path);
    const real = await resolveOptionalCompanion(model.path, basename(sidecar));
    let text: string | undefined;
    try {
      text = real !== undefined ? await readFile(real, 'utf8') : undefined;
    } catch {
      text = undefined;
    }
    if (text !== undefined) {
      const parsed = parsePreprocessSidecar(text, basename(sidecar));
      spec = text.includes('"layout"') ? parsed : { ...parsed, layout };
      source = 'sidecar';
    } else {
      const [mh, mw] = declaredInput(s, layout);
      const resize = mh !== undefined && mw !== undefined && (mh !== h || mw !== w) ? ([mh, mw] as const) : undefined;
      spec = { layout, ...(resize ? { resize } : {}) };
      source = 'default';
    }
  }
  const [eh, ew, ec] = declaredInput(s, spec.layout);
  const [ph, pw, pc] = preprocessedShape(h, w, c, spec);
  const from =
    source === 'options' ? 'the preprocessing options' : `the sidecar ${basename(sidecarPathFor(model.path))}`;
  if ((eh !== undefined && eh !== ph) || (ew !== undefined && ew !== pw)) {
    throw new BadInputError(
      `After ${from} (${describePreprocess(toDto(spec))}), the ${h}×${w} images are ${ph}×${pw}, but ${basename(model.path)} takes ${eh ?? ph}×${ew ?? pw}: ` +
        'change the padding or crop, or ask for a resize.',
      { option: 'preprocess' },
    );
  }
  if (ec !== undefined && ec !== pc) {
    throw new BadInputError(
      `The images have ${pc} channel${pc === 1 ? '' : 's'} but ${basename(model.path)} takes ${ec} in ${spec.layout} layout: check the layout, or use data with ${ec} channel${ec === 1 ? '' : 's'}.`,
      { option: 'preprocess' },
    );
  }
  return { spec, source, dto: toDto(spec) };
}
