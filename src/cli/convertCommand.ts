/**
 * `weight-lens convert IN OUT.safetensors|OUT.npz [--json] [--skip-undecoded]`: every tensor of IN written as safetensors or NumPy npz over
 * src/core/jobs/convert.ts, with a progress line on stderr when it is a terminal and a one-paragraph summary
 * (tensors, elements, bytes, and each tensor whose dtype changed) on stdout; `--json` prints the report.
 */
import { convertFile } from '../core/jobs/convert';
import { formatBytes } from '../core/io/errors';
import { parseArgs, UsageError } from './args';
import { formatInteger } from './format';
import { interruptible } from './interrupt';

/** The convert command's lines of the CLI's help. */
export const CONVERT_HELP = `  weight-lens convert IN OUT.safetensors|OUT.npz [--json] [--skip-undecoded]
      Write every tensor of IN (any supported format) as one safetensors file or NumPy .npz archive, atomically.
      Names, shapes and dtypes are kept where the output can hold them; quantised tensors (GGUF blocks, TF.js
      uint8/uint16) are dequantised to F32, and .npz stores BF16/F8 as F32. Never overwrites IN.
      --skip-undecoded   leave out tensors that hold no decodable numbers (TF.js strings, unsupported GGUF
                         types) instead of refusing the file`;

/** Runs `weight-lens convert`; resolves to the exit code. */
export async function convertCommand(argv: readonly string[]): Promise<number> {
  const { positional, options } = parseArgs(argv, { json: 'boolean', 'skip-undecoded': 'boolean' });
  const [input, output, ...rest] = positional;
  if (input === undefined || output === undefined || rest.length > 0)
    throw new UsageError('convert takes exactly IN and OUT');
  const tty = process.stderr.isTTY;
  const report = await interruptible((signal) =>
    convertFile(input, output, {
      signal,
      skipUndecoded: options['skip-undecoded'] === true,
      onTensor: (index, total, name) => {
        if (tty) process.stderr.write(`\rtensor ${index + 1}/${total} ${name}`.padEnd(100));
      },
    }),
  );
  if (tty) process.stderr.write('\r'.padEnd(101) + '\r');
  if (options.json === true) {
    process.stdout.write(JSON.stringify(report) + '\n');
    return 0;
  }
  const lines = [
    `${report.output}: ${formatInteger(report.tensors)} tensors, ${formatInteger(report.params)} values, ${formatBytes(report.bytes)} from ${report.format} (${report.seconds.toFixed(1)} s)`,
  ];
  for (const c of report.changed)
    lines.push(`  ${c.name}: ${c.from} → ${c.to}${c.dequantized ? ' (dequantised)' : ''}`);
  for (const s of report.skipped) lines.push(`  ${s.name} (${s.dtype}): left out, ${s.reason}`);
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
