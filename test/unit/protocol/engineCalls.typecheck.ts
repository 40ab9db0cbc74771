// Type-level test of the engine call map (src/protocol/engine.ts), run by the type check (`tsc -p tsconfig.json`,
// part of `npm test`), not by the test runner: each `@ts-expect-error` line below is a wrong pairing of request,
// params, event handler or answer, on the host side (`EngineClient.call`) and the worker side (the handler table).
// If the typing weakens so that one of them compiles, its directive is unused and the type check fails.
import type { CompressOptionsDto, CompressReportDto, LayerDetailDto } from '../../../src/protocol/compress';
import { DEFAULT_DISTILL_OPTIONS, DEFAULT_SPECTRA_OPTIONS } from '../../../src/protocol/defaults';
import type { SpectraReportDto } from '../../../src/protocol/spectra';
import type { DeltaHistogramDto } from '../../../src/protocol/compare';
import type { DiffReportDto } from '../../../src/protocol/diff';
import type { DistillEvent, EngineEvent, EvalEvent } from '../../../src/protocol/engine';
import type { DistillReportDto, EvalReportDto } from '../../../src/protocol/evaluate';
import type { EngineClient } from '../../../src/extension/engine/engineClient';
import type { EngineHandler, EngineHandlers } from '../../../src/worker/handlers';

declare const engine: EngineClient;
declare const options: CompressOptionsDto;

/** Keeps values alive for the type check. */
function use(...values: unknown[]): void {
  if (values.length < 0) throw new Error('unreachable');
}

/** The right pairings compile, and their answers have the call's answer type. */
export async function rightPairings(): Promise<void> {
  const report: CompressReportDto = await engine.call('compress/start', { path: '/m.pt', options }, (event) => {
    if (event.kind === 'compress/progress') use(event.progress.step);
  });
  const detail: LayerDetailDto = await engine.call('compress/detail', { artifact: '/a', layer: 'conv' });
  const evaluated: EvalReportDto = await engine.call('eval/start', { model: '/m', data: '/d', options: {} });
  const distill = { artifact: '/a', model: '/m', data: '/d', options: { ...DEFAULT_DISTILL_OPTIONS } };
  const distilled: DistillReportDto = await engine.call('distill/start', distill);
  const { outputs } = await engine.call('compress/decompress', { artifact: '/a' });
  const spectra: SpectraReportDto = await engine.call(
    'spectra/start',
    { path: '/m.pt', options: { ...DEFAULT_SPECTRA_OPTIONS } },
    (event) => {
      if (event.kind === 'spectra/layer') use(event.layer.alpha);
    },
  );
  const diff: DiffReportDto = await engine.call('diff/start', { a: '/a.pt', b: '/b.onnx', options: {} }, (event) => {
    use(event.progress.done, event.progress.total);
  });
  const delta: DeltaHistogramDto = await engine.call('diff/histogram', {
    a: '/a.pt',
    b: '/b.onnx',
    tensorA: 'w',
    tensorB: 'w',
    bins: 64,
  });
  use(report, detail, evaluated, distilled, outputs, spectra, diff, delta);
}

/** Wrong params for a request. */
export async function wrongParams(): Promise<void> {
  // @ts-expect-error compress/plan takes a checkpoint path and options, not an artifact
  await engine.call('compress/plan', { artifact: '/a' });
  // @ts-expect-error inspect/open needs histogramBins
  await engine.call('inspect/open', { path: '/m.pt' });
  // @ts-expect-error no such request
  await engine.call('compress/done', { path: '/m.pt' });
  // @ts-expect-error spectra/start needs its options (the largest exact rank and the ESD bins)
  await engine.call('spectra/start', { path: '/m.pt' });
  // @ts-expect-error spectra/artifactLayer takes an artifact and a layer, not a checkpoint path
  await engine.call('spectra/artifactLayer', { path: '/m.pt', options: { ...DEFAULT_SPECTRA_OPTIONS } });
  // @ts-expect-error convert/start needs the output path
  await engine.call('convert/start', { path: '/m.pt' });
  // @ts-expect-error convert/attachment needs its options (with or without spectra, the largest exact rank)
  await engine.call('convert/attachment', { path: '/m.pt', out: '/m.json' });
  // @ts-expect-error diff/histogram needs the tensor of each side and the bins, not only the two files
  await engine.call('diff/histogram', { a: '/a.pt', b: '/b.pt' });
}

/** An event handler for another request's events. */
export async function wrongEventHandler(onDistill: (event: DistillEvent) => void): Promise<void> {
  // @ts-expect-error compress/start streams compression events, which a distillation handler cannot take
  await engine.call('compress/start', { path: '/m.pt', options }, onDistill);
  await engine.call('eval/start', { model: '/m', data: '/d', options: {} }, (event) => {
    // @ts-expect-error eval/start streams only eval/progress
    const kind: 'distill/status' = event.kind;
    use(kind);
  });
}

/** An answer taken as another request's answer. */
export async function wrongAnswer(): Promise<void> {
  // @ts-expect-error compress/start answers a compression report, not a distillation report
  const report: DistillReportDto = await engine.call('compress/start', { path: '/m.pt', options });
  // @ts-expect-error compress/plan answers a plan, which has no layers
  use((await engine.call('compress/plan', { path: '/m.pt', options })).layers);
  use(report);
}

/** Worker handlers: an answer or an event of the wrong kind, or a missing handler. */
export function wrongHandlers(evalEvent: EvalEvent, distillReport: DistillReportDto): void {
  // @ts-expect-error eval/start must answer an evaluation report
  const badAnswer: EngineHandler<'eval/start'> = () => Promise.resolve(distillReport);
  const badEvent: EngineHandler<'distill/start'> = (_params, job) => {
    // @ts-expect-error distill/start may emit distillation events only
    job.emit(evalEvent);
    return Promise.resolve(distillReport);
  };
  // @ts-expect-error the table must have a handler for every request kind
  const partial: EngineHandlers = { 'eval/start': () => Promise.reject(new Error('unused')) };
  const any: EngineEvent = evalEvent;
  use(badAnswer, badEvent, partial, any);
}
