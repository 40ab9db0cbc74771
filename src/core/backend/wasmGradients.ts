/**
 * Gradient ops (tfjs "kernels") the wasm backend lacks, so gradients through whole networks (distillation) run on wasm:
 *
 * - `Conv2DBackpropFilter` (the weight gradient of every convolution) is rewritten as one forward convolution on
 *   wasm's XNNPACK path: dW[i, j, c, o] = Σ_{n,y,x} x̂[n, y·s + i·d, x·s + j·d, c] · dy[n, y, x, o] is a valid
 *   convolution of x̂ᵀ ([C_in, H, W, N], batch and channels swapped) with dyᵀ ([H_out, W_out, N, C_out]) at stride
 *   d and dilation s. It runs at the forward convolution's speed instead of a scalar loop.
 * - `Conv2DBackpropInput` (the input gradient) replaces wasm's own, a scalar loop about 10× slower than a forward
 *   convolution: dx is a stride-1 convolution of dy, dilated by the stride (zeros between rows and columns) and
 *   padded, with the kernel flipped in space and its channel axes swapped.
 * - Every other missing gradient kernel (depthwise convolution backprops, …) is borrowed from the pure-JS cpu
 *   backend: inputs are copied out of wasm memory, the cpu kernel runs, and the result is copied back. Correct and
 *   exact, slower; used only by rarer operators.
 *
 * `registerWasmGradKernels()` is idempotent and is called by backend selection whenever wasm becomes active.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';

/** Gradient kernels borrowed from the cpu backend when the wasm backend has none of its own. */
export const BORROWED_CPU_KERNELS: readonly string[] = [
  'DepthwiseConv2dNativeBackpropFilter',
  'DepthwiseConv2dNativeBackpropInput',
  'UnsortedSegmentSum',
  'Conv2DBackpropFilter',
];

type KernelArgs = Parameters<tf.KernelFunc>[0];

/** `tf.getKernel`, typed as it behaves: undefined when no kernel is registered. */
function kernelOf(name: string, backend: string): tf.KernelConfig | undefined {
  const found: tf.KernelConfig | undefined = tf.getKernel(name, backend);
  return found;
}

/** The parts of a tfjs backend these kernels use (wasm's and cpu's both have them). */
interface DataBackend {
  readSync(dataId: tf.DataId): tf.backend_util.BackendValues;
  write(values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType): tf.DataId;
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
}

function dataBackend(backend: unknown): DataBackend {
  return backend as DataBackend;
}

function runWasm(
  name: string,
  backend: DataBackend,
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap,
): tf.TensorInfo {
  const kernel = kernelOf(name, 'wasm');
  if (kernel === undefined) throw new Error(`wasm kernel ${name} is not registered.`);
  return kernel.kernelFunc({ inputs, attrs, backend }) as tf.TensorInfo;
}

/** Attributes both convolution backprop kernels receive (tfjs's Conv2DBackprop{Filter,Input}Attrs). */
interface ConvBackpropAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  dilations?: number | [number, number];
}

/** Intermediate tensors of one kernel call: `keep` records one, `release` frees them all. */
function scratch(backend: DataBackend): { keep: (t: tf.TensorInfo) => tf.TensorInfo; release: () => void } {
  const held: tf.TensorInfo[] = [];
  return {
    keep: (t) => {
      held.push(t);
      return t;
    },
    release: () => {
      for (const t of held) backend.disposeData(t.dataId);
    },
  };
}

/**
 * Conv2DBackpropFilter for NHWC on wasm as a forward convolution (see the module comment). Falls back to the cpu
 * kernel when stride and dilation are both above 1 (tfjs convolutions accept only one of them).
 */
function conv2dBackpropFilterWasm(args: KernelArgs): tf.TensorInfo {
  const { inputs, attrs } = args;
  const backend = dataBackend(args.backend);
  const x = inputs['x'] as tf.TensorInfo;
  const dy = inputs['dy'] as tf.TensorInfo;
  const a = attrs as unknown as ConvBackpropAttrs & { filterShape: [number, number, number, number] };
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    a.filterShape,
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
    false,
    a.dataFormat === 'NCHW' ? 'channelsFirst' : 'channelsLast',
  );
  const stridesOver1 = info.strideHeight > 1 || info.strideWidth > 1;
  const dilationsOver1 = info.dilationHeight > 1 || info.dilationWidth > 1;
  if (a.dataFormat === 'NCHW' || (stridesOver1 && dilationsOver1)) return borrowCpu('Conv2DBackpropFilter')(args);

  const { keep, release } = scratch(backend);
  try {
    const { top, bottom, left, right } = info.padInfo;
    const padded = padOrCrop(x, backend, top, bottom, left, right, keep);
    const xT = keep(runWasm('Transpose', backend, { x: padded }, { perm: [3, 1, 2, 0] }));
    const dyT = keep(runWasm('Transpose', backend, { x: dy }, { perm: [1, 2, 0, 3] }));
    const conv = keep(
      runWasm(
        'Conv2D',
        backend,
        { x: xT, filter: dyT },
        {
          strides: [info.dilationHeight, info.dilationWidth],
          dilations: [info.strideHeight, info.strideWidth],
          pad: 'valid',
          dataFormat: 'NHWC',
        },
      ),
    );
    const [kh, kw, cin, cout] = a.filterShape;
    let cropped = conv;
    if (conv.shape[1] !== kh || conv.shape[2] !== kw) {
      cropped = keep(runWasm('Slice', backend, { x: conv }, { begin: [0, 0, 0, 0], size: [cin, kh, kw, cout] }));
    }
    return runWasm('Transpose', backend, { x: cropped }, { perm: [1, 2, 0, 3] });
  } finally {
    release();
  }
}

/** Crops (negative amounts) or zero-pads (positive) the two spatial axes of an NHWC tensor. */
function padOrCrop(
  x: tf.TensorInfo,
  backend: DataBackend,
  top: number,
  bottom: number,
  left: number,
  right: number,
  keep: (t: tf.TensorInfo) => tf.TensorInfo,
): tf.TensorInfo {
  let y = x;
  if (top < 0 || bottom < 0 || left < 0 || right < 0) {
    const [n = 0, h = 0, w = 0, c = 0] = y.shape;
    const t = Math.max(0, -top);
    const l = Math.max(0, -left);
    const size = [n, h - t - Math.max(0, -bottom), w - l - Math.max(0, -right), c];
    y = keep(runWasm('Slice', backend, { x: y }, { begin: [0, t, l, 0], size }));
  }
  const pads = [Math.max(0, top), Math.max(0, bottom), Math.max(0, left), Math.max(0, right)];
  if (pads.some((p) => p > 0)) {
    y = keep(
      runWasm('PadV2', backend, { x: y }, {
        paddings: [
          [0, 0],
          [pads[0], pads[1]],
          [pads[2], pads[3]],
          [0, 0],
        ],
        constantValue: 0,
      } as unknown as tf.NamedAttrMap),
    );
  }
  return y;
}

/**
 * Conv2DBackpropInput for NHWC on wasm as a stride-1 forward convolution (see the module comment); NCHW goes to the
 * cpu kernel.
 */
function conv2dBackpropInputWasm(args: KernelArgs): tf.TensorInfo {
  const { inputs, attrs } = args;
  const backend = dataBackend(args.backend);
  const dy = inputs['dy'] as tf.TensorInfo;
  const filter = inputs['filter'] as tf.TensorInfo;
  const a = attrs as unknown as ConvBackpropAttrs & { inputShape: [number, number, number, number] };
  if (a.dataFormat === 'NCHW') return borrowCpu('Conv2DBackpropInput')(args);
  const info = tf.backend_util.computeConv2DInfo(
    a.inputShape,
    filter.shape as [number, number, number, number],
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
  );
  const { keep, release } = scratch(backend);
  try {
    const [n, ho, wo, cout] = dy.shape as [number, number, number, number];
    const [, h, w] = a.inputShape;
    const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
    const [kh, kw] = [info.filterHeight, info.filterWidth];
    let spread = dy;
    if (sh > 1 || sw > 1) {
      const six = keep(runWasm('Reshape', backend, { x: dy }, { shape: [n, ho, 1, wo, 1, cout] }));
      const padded = keep(
        runWasm(
          'PadV2',
          backend,
          { x: six },
          {
            paddings: [
              [0, 0],
              [0, 0],
              [0, sh - 1],
              [0, 0],
              [0, sw - 1],
              [0, 0],
            ],
            constantValue: 0,
          },
        ),
      );
      spread = keep(runWasm('Reshape', backend, { x: padded }, { shape: [n, ho * sh, wo * sw, cout] }));
    }
    // Rows of the spread dy: (ho−1)·sh + 1 meaningful ones, then zeros (cropped or kept by the padding below).
    const top = (kh - 1) * dh - info.padInfo.top;
    const left = (kw - 1) * dw - info.padInfo.left;
    const bottom = h + (kh - 1) * dh - top - (spread.shape[1] ?? 0);
    const right = w + (kw - 1) * dw - left - (spread.shape[2] ?? 0);
    const framed = padOrCrop(spread, backend, top, bottom, left, right, keep);
    const flipped = keep(runWasm('Reverse', backend, { x: filter }, { dims: [0, 1] }));
    const swapped = keep(runWasm('Transpose', backend, { x: flipped }, { perm: [0, 1, 3, 2] }));
    return runWasm(
      'Conv2D',
      backend,
      { x: framed, filter: swapped },
      {
        strides: [1, 1],
        dilations: [dh, dw],
        pad: 'valid',
        dataFormat: 'NHWC',
      },
    );
  } finally {
    release();
  }
}

/** A wasm kernel that runs the cpu backend's kernel `name` on copies of its inputs. */
function borrowCpu(name: string): (args: KernelArgs) => tf.TensorInfo {
  return (args: KernelArgs): tf.TensorInfo => {
    const cpuKernel = kernelOf(name, 'cpu');
    const cpuBackend = tf.findBackend('cpu') as tf.KernelBackend | null;
    const cpu = cpuBackend === null ? null : dataBackend(cpuBackend);
    if (cpuKernel === undefined || cpu === null) throw new Error(`Neither wasm nor cpu has a ${name} kernel.`);
    const backend = dataBackend(args.backend);
    const copies: tf.TensorInfo[] = [];
    try {
      const cpuInputs: tf.NamedTensorInfoMap = {};
      for (const [key, t] of Object.entries(args.inputs)) {
        if (t === undefined) continue;
        const values = backend.readSync(t.dataId);
        const copy: tf.TensorInfo = { dataId: cpu.write(values, t.shape, t.dtype), shape: t.shape, dtype: t.dtype };
        copies.push(copy);
        cpuInputs[key] = copy;
      }
      const out = cpuKernel.kernelFunc({
        inputs: cpuInputs,
        attrs: args.attrs,
        backend: cpuBackend as tf.KernelBackend,
      });
      if (Array.isArray(out))
        throw new Error(`${name} returned several outputs; only single-output kernels are borrowed.`);
      copies.push(out);
      const values = cpu.readSync(out.dataId);
      return { dataId: backend.write(values, out.shape, out.dtype), shape: out.shape, dtype: out.dtype };
    } finally {
      for (const c of copies) cpu.disposeData(c.dataId);
    }
  };
}

let registered = false;

/**
 * Registers the missing wasm gradient kernels and the faster Conv2DBackpropInput (idempotent; other kernels wasm
 * already has are left alone). Call after the wasm backend is registered; it needs the cpu backend's kernels, which
 * this module imports.
 */
export function registerWasmGradients(): void {
  if (registered) return;
  registered = true;
  if (kernelOf('Conv2DBackpropInput', 'wasm') !== undefined) tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
  tf.registerKernel({ kernelName: 'Conv2DBackpropInput', backendName: 'wasm', kernelFunc: conv2dBackpropInputWasm });
  for (const name of BORROWED_CPU_KERNELS) {
    if (kernelOf(name, 'wasm') !== undefined) continue;
    const kernelFunc = name === 'Conv2DBackpropFilter' ? conv2dBackpropFilterWasm : borrowCpu(name);
    tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc });
  }
}
