/**
 * Names of the operators of the TF.js LayersModel domain (`tfjs.*`), in a module without TensorFlow.js so that
 * `supportedOps.ts` (and through it the importers) can list them before any tensor work. The implementations live in
 * `layersOps.ts`; a unit test keeps the two in step.
 */

/**
 * Operators the LayersModel importer (`layersImport.ts`) emits, each named `tfjs.<op>`. They work in the model's own
 * layout (NHWC for Keras `channels_last`, NCHW where a layer says `channels_first`) on weights in their stored layout.
 */
export const LAYERS_OP_NAMES: readonly string[] = [
  // convolution, dense
  'tfjs.Conv2D',
  'tfjs.DepthwiseConv2D',
  'tfjs.SeparableConv2D',
  'tfjs.Conv2DTranspose',
  'tfjs.Dense',
  // activations
  'tfjs.Activation',
  'tfjs.LeakyReLU',
  'tfjs.PReLU',
  'tfjs.ReLU',
  'tfjs.ELU',
  'tfjs.Softmax',
  'tfjs.Scale',
  // merging
  'tfjs.Add',
  'tfjs.Multiply',
  'tfjs.Subtract',
  'tfjs.Average',
  'tfjs.Maximum',
  'tfjs.Minimum',
  'tfjs.Concatenate',
  // spatial
  'tfjs.UpSampling2D',
  'tfjs.ZeroPadding2D',
  'tfjs.Cropping2D',
  'tfjs.MaxPooling2D',
  'tfjs.AveragePooling2D',
  'tfjs.GlobalAveragePooling2D',
  'tfjs.GlobalMaxPooling2D',
  'tfjs.DepthToSpace',
  // normalisation
  'tfjs.BatchNormalization',
  'tfjs.LayerNormalization',
  // shape
  'tfjs.Flatten',
  'tfjs.Reshape',
  'tfjs.Permute',
  'tfjs.Identity',
];

/**
 * Keras activation names the `tfjs.*` operators implement (the importer maps other spellings, such as tfjs-layers'
 * `hardSigmoid` or `silu`, onto these).
 */
export const LAYER_ACTIVATION_NAMES: readonly string[] = [
  'linear',
  'relu',
  'relu6',
  'elu',
  'selu',
  'sigmoid',
  'hard_sigmoid',
  'tanh',
  'softmax',
  'log_softmax',
  'softplus',
  'softsign',
  'swish',
  'gelu',
  'gelu_new',
  'mish',
  'leaky_relu',
  'exponential',
];
