/**
 * `node --import tsx bench/onnx-node-tests.ts`: the ONNX operator conformance tests (Debian libonnx-testdata 1.12,
 * extracted by `sh test/fixtures/make/published_large.sh --testdata` into .cache/onnx-testdata/node) run through the
 * importer and the tfjs graph executor, against the expected outputs the ONNX project ships. Tests whose model uses
 * an operator the executor refuses are counted as unsupported; the others must match.
 *
 * Tensors (.pb TensorProto files) are decoded by the project's ONNX reader: each is wrapped as the one initializer
 * of a minimal ModelProto. Booleans compare as 0/1 and integers as numbers, as the executor holds them.
 *
 * Run: node --import tsx bench/onnx-node-tests.ts [--filter REGEX] [--tolerance 1e-4] [--verbose]
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/core/backend/tfjsBackend';
import { ProtoWriter } from '../src/core/containers/protobufWriter';
import { onnxFormat } from '../src/core/formats/onnx';
import { executeGraph, weightTensors } from '../src/core/graph/execute';
import { loadOnnxModel } from '../src/core/graph/onnxImport';
import { MemoryByteSource } from '../src/core/io/byteSource';
import { readTensorValues } from '../src/core/tensors/tensor';
import { relativeMaxError } from '../test/unit/graph/helpers';

const NODE_DIR = resolve(__dirname, '..', '.cache/onnx-testdata/node');

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Decodes one TensorProto file: its values as float32 and its shape. */
async function readPb(path: string): Promise<{ values: Float32Array; shape: number[] }> {
  const tensor = readFileSync(path);
  const w = new ProtoWriter();
  w.varint(1, 8);
  w.message(7, (g) => {
    g.bytes(5, tensor);
  });
  w.message(8, (o) => o.string(1, '').varint(2, 17));
  const source = new MemoryByteSource(w.finish().slice(), path);
  const ckpt = await onnxFormat.open(source, {
    path,
    siblings: { open: () => Promise.reject(new Error('no siblings')) },
  });
  try {
    const [entry] = ckpt.tensors;
    if (entry === undefined) throw new Error(`${path} holds no tensor`);
    return { values: await readTensorValues(entry), shape: entry.shape.slice() };
  } finally {
    await ckpt.close();
  }
}

type Outcome = { kind: 'pass' } | { kind: 'unsupported'; why: string } | { kind: 'fail'; why: string };

async function runOne(dir: string, tolerance: number): Promise<Outcome> {
  let model;
  try {
    model = await loadOnnxModel(join(dir, 'model.onnx'));
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    return /is not supported|not supported by the graph executor/.test(why)
      ? { kind: 'unsupported', why }
      : { kind: 'fail', why };
  }
  const data = join(dir, 'test_data_set_0');
  const { graph, weights } = model;
  const inputs: Record<string, tf.Tensor> = {};
  const w = weightTensors(graph, weights);
  try {
    for (const [i, info] of graph.inputs.entries()) {
      const t = await readPb(join(data, `input_${i}.pb`));
      inputs[info.name] = tf.tensor(t.values, t.shape, 'float32');
    }
    const out = executeGraph(graph, w, inputs);
    try {
      for (const [i, name] of graph.outputs.entries()) {
        const expected = await readPb(join(data, `output_${i}.pb`));
        const o = out[name];
        if (o === undefined) return { kind: 'fail', why: `output ${name} missing` };
        if (o.shape.join() !== expected.shape.join())
          return {
            kind: 'fail',
            why: `${name}: shape [${o.shape.join(', ')}], expected [${expected.shape.join(', ')}]`,
          };
        const err = expected.values.length === 0 ? 0 : relativeMaxError(o.dataSync(), expected.values);
        if (!(err <= tolerance)) return { kind: 'fail', why: `${name}: relative max error ${err.toExponential(2)}` };
      }
      return { kind: 'pass' };
    } finally {
      tf.dispose(Object.values(out));
    }
  } catch (e) {
    return { kind: 'fail', why: e instanceof Error ? e.message : String(e) };
  } finally {
    tf.dispose([...Object.values(w), ...Object.values(inputs)]);
  }
}

async function main(): Promise<void> {
  if (!existsSync(NODE_DIR)) {
    console.log(`${NODE_DIR} is missing: run sh test/fixtures/make/published_large.sh --testdata`);
    process.exitCode = 1;
    return;
  }
  await initBackend('cpu');
  const filter = new RegExp(arg('filter') ?? '.');
  const tolerance = Number(arg('tolerance') ?? '1e-4');
  const verbose = process.argv.includes('--verbose');
  const tests = readdirSync(NODE_DIR)
    .filter((d) => d.startsWith('test_') && filter.test(d))
    .sort();
  const counts = { pass: 0, unsupported: 0, fail: 0 };
  for (const t of tests) {
    const outcome = await runOne(join(NODE_DIR, t), tolerance);
    counts[outcome.kind]++;
    if (outcome.kind === 'fail') console.log(`FAIL ${t}: ${outcome.why}`);
    else if (verbose)
      console.log(
        `${outcome.kind === 'pass' ? 'pass' : 'unsupported'} ${t}${outcome.kind === 'unsupported' ? `: ${outcome.why}` : ''}`,
      );
  }
  console.log(
    `${tests.length} node tests: ${counts.pass} pass, ${counts.fail} fail, ${counts.unsupported} use operators the executor refuses`,
  );
  process.exitCode = counts.fail > 0 ? 1 : 0;
}

void main();
