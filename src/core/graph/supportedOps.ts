/**
 * The operators the functional executor (`execute.ts`) implements, in a module without TensorFlow.js so importers
 * can refuse an unsupported model before any tensor work. A unit test keeps this list and the executor in step.
 */
import { LAYERS_OP_NAMES } from './layersOpNames';

/** ONNX operators (default domain) that `runGraph` implements. */
export const SUPPORTED_OPS: ReadonlySet<string> = new Set([
  // convolution, pooling, normalisation
  'Conv', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'BatchNormalization', 'LayerNormalization',
  // dense
  'Gemm', 'MatMul',
  // activations
  'Relu', 'Clip', 'LeakyRelu', 'Sigmoid', 'Tanh', 'HardSwish', 'HardSigmoid', 'Elu', 'Softmax', 'Gelu', 'Softplus',
  // elementwise
  'Add', 'Mul', 'Sub', 'Div', 'Pow', 'Sqrt', 'Exp', 'Log', 'Neg', 'Abs', 'Reciprocal', 'Erf', 'Max', 'Min',
  // reductions
  'ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin',
  // shape and layout
  'Flatten', 'Reshape', 'Transpose', 'Concat', 'Pad', 'Squeeze', 'Unsqueeze', 'Slice', 'DepthToSpace', 'Resize',
  'Identity', 'Dropout', 'Constant', 'ConstantOfShape', 'Shape', 'Gather', 'Cast', 'Split', 'Expand', 'Tile', 'Range',
  // transposed convolution, more normalisation and activations, more elementwise
  'ConvTranspose', 'InstanceNormalization', 'PRelu', 'Sum', 'Mean', 'Floor', 'Ceil', 'Round', 'Sign',
  // comparisons, logic, selection, indices (booleans are 0/1 and indices float32 integers, logicOps.ts)
  'Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'Not', 'And', 'Or', 'Xor', 'Where', 'ArgMax', 'ArgMin',
  'TopK',
  // TF.js LayersModel layers (`tfjs.*`, layersOps.ts)
  ...LAYERS_OP_NAMES,
]);
