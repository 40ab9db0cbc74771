/**
 * Which files the Inspector opens, and how: file-name patterns for the two custom-editor registrations (the
 * unambiguous ones open in the Inspector by default, ambiguous ones such as `*.bin` or `*.json` only on request), and
 * the explorer-menu regular expression. package.json's `contributes` must agree; a unit test checks that it does.
 * Pure data and string matching: no `vscode` import.
 */

/** View type of the Inspector for files it opens by default. */
export const INSPECTOR_VIEW_TYPE = 'weightLens.inspector';
/** View type of the same Inspector for ambiguous files (offered under "Open With…", never the default). */
export const INSPECTOR_OPTIONAL_VIEW_TYPE = 'weightLens.inspectorOptional';

/** Glob patterns (VS Code `filenamePattern`) that open in the Inspector by default. */
export const DEFAULT_PATTERNS: readonly string[] = [
  '*.safetensors',
  '*.safetensors.index.json',
  '*.pt',
  '*.pth',
  '*.ckpt',
  '*.onnx',
  '*.npz',
  '*.npy',
  '*.gguf',
  '*.keras',
];

/** Glob patterns for which the Inspector is only an option: these extensions are shared with other file types. */
export const OPTIONAL_PATTERNS: readonly string[] = ['*.bin', '*.h5', '*.hdf5', 'model.json', '*.json'];

/**
 * Matches file names that get "Open in Inspector" in the explorer context menu and editor title (case-insensitive):
 * every default pattern plus the checkpoint-like optional ones (not every `*.json`: only TF.js `model.json` and
 * weights manifests, `weights_manifest.json` or `group1-weights_manifest.json`).
 */
export const MENU_FILENAME_REGEX =
  /\.(safetensors|pt|pth|ckpt|onnx|npz|npy|gguf|keras|bin|h5|hdf5)$|^model\.json$|\.safetensors\.index\.json$|weights_manifest\.json$/i;

/** File extensions (without the dot) the "open a checkpoint" dialogs offer as "Checkpoints". */
export const CHECKPOINT_EXTENSIONS: readonly string[] = [
  'safetensors',
  'pt',
  'pth',
  'ckpt',
  'bin',
  'onnx',
  'json',
  'h5',
  'hdf5',
  'keras',
  'npz',
  'npy',
  'gguf',
];

/** Converts a simple `filenamePattern` glob (only `*` wildcards) to an anchored, case-insensitive regular expression. */
export function globToRegExp(glob: string): RegExp {
  const body = glob
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`, 'i');
}

const defaultRegexes = DEFAULT_PATTERNS.map(globToRegExp);

/**
 * The view type to open `fileName` (a base name) with: the default Inspector when one of `DEFAULT_PATTERNS`
 * matches, otherwise the optional one (which VS Code will open for any file when asked explicitly).
 */
export function viewTypeFor(fileName: string): string {
  return defaultRegexes.some((re) => re.test(fileName)) ? INSPECTOR_VIEW_TYPE : INSPECTOR_OPTIONAL_VIEW_TYPE;
}

/** True if `fileName` (a base name) looks like a checkpoint the Inspector supports. */
export function isCheckpointName(fileName: string): boolean {
  return MENU_FILENAME_REGEX.test(fileName) || defaultRegexes.some((re) => re.test(fileName));
}
