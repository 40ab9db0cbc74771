// The safe unpickler: real pickles written by CPython at every protocol decode to the same plain data, PyTorch's
// tensor records are rebuilt as inert data, and anything that would execute code, or is malformed or hostile, is
// refused with a one-sentence CheckpointFormatError.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CheckpointFormatError } from '../../../src/core/io/errors';
import { PickleDict, unpickle, type PickleValue } from '../../../src/core/containers/pickle';

const opts = { label: 'test.pkl' };

/** Converts unpickled values to plain JSON-like data for deep comparison. */
function plain(v: PickleValue): unknown {
  if (v === null || typeof v !== 'object') return typeof v === 'bigint' ? `${v.toString()}n` : v;
  if (v instanceof Uint8Array) return { bytes: Array.from(v) };
  if (v instanceof PickleDict) return Object.fromEntries(v.entries.map(([k, val]) => [String(plain(k)), plain(val)]));
  switch (v.kind) {
    case 'list':
      return v.items.map(plain);
    case 'tuple':
      return { tuple: v.items.map(plain) };
    case 'set':
      return { [v.frozen ? 'frozenset' : 'set']: v.items.map(plain) };
    default:
      return { kind: v.kind };
  }
}

function bytes(...parts: (string | number[] | Uint8Array)[]): Uint8Array {
  const chunks = parts.map((p) =>
    typeof p === 'string' ? Uint8Array.from(Buffer.from(p, 'latin1')) : Uint8Array.from(p),
  );
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function refuses(data: Uint8Array, pattern: RegExp): void {
  assert.throws(
    () => unpickle(data, opts),
    (error: unknown) => {
      assert.ok(error instanceof CheckpointFormatError, `expected CheckpointFormatError, got ${String(error)}`);
      assert.match(error.message, pattern);
      assert.ok(!error.message.includes('\n'));
      return true;
    },
  );
}

// pickle.dumps(obj, protocol=p) for p = 0…5 by CPython 3, where obj is the dict described by EXPECTED below
// (with 'shared' = [l, l] for one list l = [1], which pickles through the memo).
const CPYTHON: readonly string[] = [
  'KGRwMApWYQpwMQoobHAyCkkxCmFGMi41CmFWeApwMwphY19jb2RlY3MKZW5jb2RlCnA0CihWYnkKcDUKVmxhdGluMQpwNgp0cDcKUnA4CmFOYUkwMQphSTAwCmFzVmJpZwpwOQpMMTE4MDU5MTYyMDcxNzQxMTMwMzQyNEwKc1ZuZWcKcDEwCkktNQpzVm5lZ2JpZwpwMTEKTC0zNjg5MzQ4ODE0NzQxOTEwMzIzMkwKc1ZpMzIKcDEyCkkxMDAwMDAKc1ZpMTYKcDEzCkkzMDAKc1Z0CnAxNAooSTEKSTIKSTMKSTQKdHAxNQpzVnQxCnAxNgooSTEKdHAxNwpzVnQyCnAxOAooSTEKSTIKdHAxOQpzVnQzCnAyMAooSTEKSTIKSTMKdHAyMQpzVnMKcDIyCmNfX2J1aWx0aW5fXwpzZXQKcDIzCigobHAyNApJNwphdHAyNQpScDI2CnNWZnMKcDI3CmNfX2J1aWx0aW5fXwpmcm96ZW5zZXQKcDI4CigobHAyOQpJMwphdHAzMApScDMxCnNWdQpwMzIKVulcdTIwYWNcVTAwMDFmNjAwCnAzMwpzVmJhCnAzNApjX19idWlsdGluX18KYnl0ZWFycmF5CnAzNQooZzQKKFZhYgpwMzYKZzYKdHAzNwpScDM4CnRwMzkKUnA0MApzVm9kCnA0MQpjY29sbGVjdGlvbnMKT3JkZXJlZERpY3QKcDQyCih0UnA0MwpWawpwNDQKSTEKc3NWc2hhcmVkCnA0NQoobHA0NgoobHA0NwpJMQphYWc0Nwphc1ZmCnA0OApGLTAuMTI1CnNWZW1wdHkKcDQ5ClYKcDUwCnMu',
  'fXEAKFgBAAAAYXEBXXECKEsBR0AEAAAAAAAAWAEAAAB4cQNjX2NvZGVjcwplbmNvZGUKcQQoWAIAAABieXEFWAYAAABsYXRpbjFxBnRxB1JxCE5JMDEKSTAwCmVYAwAAAGJpZ3EJTDExODA1OTE2MjA3MTc0MTEzMDM0MjRMClgDAAAAbmVncQpK+////1gGAAAAbmVnYmlncQtMLTM2ODkzNDg4MTQ3NDE5MTAzMjMyTApYAwAAAGkzMnEMSqCGAQBYAwAAAGkxNnENTSwBWAEAAAB0cQ4oSwFLAksDSwR0cQ9YAgAAAHQxcRAoSwF0cRFYAgAAAHQycRIoSwFLAnRxE1gCAAAAdDNxFChLAUsCSwN0cRVYAQAAAHNxFmNfX2J1aWx0aW5fXwpzZXQKcRcoXXEYSwdhdHEZUnEaWAIAAABmc3EbY19fYnVpbHRpbl9fCmZyb3plbnNldApxHChdcR1LA2F0cR5ScR9YAQAAAHVxIFgJAAAAw6nigqzwn5iAcSFYAgAAAGJhcSJjX19idWlsdGluX18KYnl0ZWFycmF5CnEjKGgEKFgCAAAAYWJxJGgGdHElUnEmdHEnUnEoWAIAAABvZHEpY2NvbGxlY3Rpb25zCk9yZGVyZWREaWN0CnEqKVJxK1gBAAAAa3EsSwFzWAYAAABzaGFyZWRxLV1xLihdcS9LAWFoL2VYAQAAAGZxMEe/wAAAAAAAAFgFAAAAZW1wdHlxMVgAAAAAcTJ1Lg==',
  'gAJ9cQAoWAEAAABhcQFdcQIoSwFHQAQAAAAAAABYAQAAAHhxA2NfY29kZWNzCmVuY29kZQpxBFgCAAAAYnlxBVgGAAAAbGF0aW4xcQaGcQdScQhOiIllWAMAAABiaWdxCYoJAAAAAAAAAABAWAMAAABuZWdxCkr7////WAYAAABuZWdiaWdxC4oJAAAAAAAAAAD+WAMAAABpMzJxDEqghgEAWAMAAABpMTZxDU0sAVgBAAAAdHEOKEsBSwJLA0sEdHEPWAIAAAB0MXEQSwGFcRFYAgAAAHQycRJLAUsChnETWAIAAAB0M3EUSwFLAksDh3EVWAEAAABzcRZjX19idWlsdGluX18Kc2V0CnEXXXEYSwdhhXEZUnEaWAIAAABmc3EbY19fYnVpbHRpbl9fCmZyb3plbnNldApxHF1xHUsDYYVxHlJxH1gBAAAAdXEgWAkAAADDqeKCrPCfmIBxIVgCAAAAYmFxImNfX2J1aWx0aW5fXwpieXRlYXJyYXkKcSNoBFgCAAAAYWJxJGgGhnElUnEmhXEnUnEoWAIAAABvZHEpY2NvbGxlY3Rpb25zCk9yZGVyZWREaWN0CnEqKVJxK1gBAAAAa3EsSwFzWAYAAABzaGFyZWRxLV1xLihdcS9LAWFoL2VYAQAAAGZxMEe/wAAAAAAAAFgFAAAAZW1wdHlxMVgAAAAAcTJ1Lg==',
  'gAN9cQAoWAEAAABhcQFdcQIoSwFHQAQAAAAAAABYAQAAAHhxA0MCYnlxBE6IiWVYAwAAAGJpZ3EFigkAAAAAAAAAAEBYAwAAAG5lZ3EGSvv///9YBgAAAG5lZ2JpZ3EHigkAAAAAAAAAAP5YAwAAAGkzMnEISqCGAQBYAwAAAGkxNnEJTSwBWAEAAAB0cQooSwFLAksDSwR0cQtYAgAAAHQxcQxLAYVxDVgCAAAAdDJxDksBSwKGcQ9YAgAAAHQzcRBLAUsCSwOHcRFYAQAAAHNxEmNidWlsdGlucwpzZXQKcRNdcRRLB2GFcRVScRZYAgAAAGZzcRdjYnVpbHRpbnMKZnJvemVuc2V0CnEYXXEZSwNhhXEaUnEbWAEAAAB1cRxYCQAAAMOp4oKs8J+YgHEdWAIAAABiYXEeY2J1aWx0aW5zCmJ5dGVhcnJheQpxH0MCYWJxIIVxIVJxIlgCAAAAb2RxI2Njb2xsZWN0aW9ucwpPcmRlcmVkRGljdApxJClScSVYAQAAAGtxJksBc1gGAAAAc2hhcmVkcSddcSgoXXEpSwFhaCllWAEAAABmcSpHv8AAAAAAAABYBQAAAGVtcHR5cStYAAAAAHEsdS4=',
  'gASVPAEAAAAAAAB9lCiMAWGUXZQoSwFHQAQAAAAAAACMAXiUQwJieZROiIlljANiaWeUigkAAAAAAAAAAECMA25lZ5RK+////4wGbmVnYmlnlIoJAAAAAAAAAAD+jANpMzKUSqCGAQCMA2kxNpRNLAGMAXSUKEsBSwJLA0sEdJSMAnQxlEsBhZSMAnQylEsBSwKGlIwCdDOUSwFLAksDh5SMAXOUj5QoSweQjAJmc5QoSwORlIwBdZSMCcOp4oKs8J+YgJSMAmJhlIwIYnVpbHRpbnOUjAlieXRlYXJyYXmUk5RDAmFilIWUUpSMAm9klIwLY29sbGVjdGlvbnOUjAtPcmRlcmVkRGljdJSTlClSlIwBa5RLAXOMBnNoYXJlZJRdlChdlEsBYWgnZYwBZpRHv8AAAAAAAACMBWVtcHR5lIwAlHUu',
  'gAWVJgEAAAAAAAB9lCiMAWGUXZQoSwFHQAQAAAAAAACMAXiUQwJieZROiIlljANiaWeUigkAAAAAAAAAAECMA25lZ5RK+////4wGbmVnYmlnlIoJAAAAAAAAAAD+jANpMzKUSqCGAQCMA2kxNpRNLAGMAXSUKEsBSwJLA0sEdJSMAnQxlEsBhZSMAnQylEsBSwKGlIwCdDOUSwFLAksDh5SMAXOUj5QoSweQjAJmc5QoSwORlIwBdZSMCcOp4oKs8J+YgJSMAmJhlJYCAAAAAAAAAGFilIwCb2SUjAtjb2xsZWN0aW9uc5SMC09yZGVyZWREaWN0lJOUKVKUjAFrlEsBc4wGc2hhcmVklF2UKF2USwFhaCJljAFmlEe/wAAAAAAAAIwFZW1wdHmUjACUdS4=',
];

const EXPECTED = {
  a: [1, 2.5, 'x', { bytes: [98, 121] }, null, true, false],
  big: '1180591620717411303424n',
  neg: -5,
  negbig: '-36893488147419103232n',
  i32: 100000,
  i16: 300,
  t: { tuple: [1, 2, 3, 4] },
  t1: { tuple: [1] },
  t2: { tuple: [1, 2] },
  t3: { tuple: [1, 2, 3] },
  s: { set: [7] },
  fs: { frozenset: [3] },
  u: 'é€😀',
  ba: { bytes: [97, 98] },
  od: { k: 1 },
  shared: [[1], [1]],
  f: -0.125,
  empty: '',
};

for (const [protocol, b64] of CPYTHON.entries()) {
  test(`a CPython protocol ${protocol} pickle decodes to plain data`, () => {
    const data = Uint8Array.from(Buffer.from(b64, 'base64'));
    const { value, end } = unpickle(data, opts);
    assert.equal(end, data.length);
    assert.deepEqual(plain(value), EXPECTED);
    // The memo makes both references the same list object, as in Python.
    assert.ok(value instanceof PickleDict);
    const shared = value.get('shared');
    assert.ok(
      shared !== undefined &&
        shared !== null &&
        typeof shared === 'object' &&
        !(shared instanceof Uint8Array) &&
        !(shared instanceof PickleDict) &&
        shared.kind === 'list',
    );
    assert.equal(shared.items[0], shared.items[1]);
  });
}

test('refuses os.system by name, without executing anything', () => {
  refuses(
    bytes('\x80\x02cos\nsystem\nX\x0a\x00\x00\x00echo owned\x85R.'),
    /^test\.pkl refers to the Python global os\.system, which Weight Lens does not allow in a checkpoint \(only plain tensors and containers are accepted\); it was not executed\.$/,
  );
});

test('refuses other dangerous globals, whichever opcode names them', () => {
  refuses(bytes('\x80\x02c__builtin__\neval\nX\x01\x00\x00\x001\x85R.'), /global builtins\.eval/);
  refuses(bytes('\x80\x04\x8c\nsubprocess\x8c\x05Popen\x93.'), /global subprocess\.Popen/);
  refuses(bytes('cbuiltins\ngetattr\n.'), /global builtins\.getattr/);
  refuses(bytes('\x80\x02ctorch.storage\n_load_from_bytes\n.'), /global torch\.storage\._load_from_bytes/);
  refuses(bytes("(ios\nsystem\nS'id'\n."), /global os\.system/); // INST
  refuses(bytes('\x80\x02cnumpy\ndtype\nq\x00)\x81.'), /numpy\.dtype|not a data class/); // NEWOBJ on a non-class
});

test('allowlisted names are data constructors, never calls', () => {
  // torch.Size((2, 3)) → a tuple; collections.OrderedDict() with BUILD state (_metadata) → a dict with attributes.
  const { value } = unpickle(bytes('\x80\x02ctorch\nSize\nK\x02K\x03\x86\x85R.'), opts);
  assert.deepEqual(plain(value), { tuple: [2, 3] });
  const od = unpickle(
    bytes('\x80\x02ccollections\nOrderedDict\n)R}X\x09\x00\x00\x00_metadata}sbX\x01\x00\x00\x00aK\x01s.'),
    opts,
  ).value;
  assert.ok(od instanceof PickleDict);
  assert.equal(od.get('a'), 1);
  assert.ok(od.attributes instanceof PickleDict);
  // Calling a name that may only be mentioned is refused.
  refuses(bytes('\x80\x02ctorch\nfloat16\n)R.'), /may mention but not call/);
});

test('NumPy scalars and dtypes decode as plain numbers', () => {
  // numpy.core.multiarray.scalar(numpy.dtype('f8', False, True) + BUILD state, b'...') as torch 1.13 writes it.
  const f8 = new Uint8Array(new Float64Array([0.875]).buffer);
  const data = bytes(
    '\x80\x02cnumpy.core.multiarray\nscalar\ncnumpy\ndtype\nX\x02\x00\x00\x00f8\x89\x88\x87R(K\x03X\x01\x00\x00\x00<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tbC\x08',
    f8,
    '\x86R.',
  );
  assert.equal(unpickle(data, opts).value, 0.875);
  const i8 = bytes(
    '\x80\x02cnumpy.core.multiarray\nscalar\ncnumpy\ndtype\nX\x02\x00\x00\x00i8\x89\x88\x87RC\x08',
    [0xb0, 0x04, 0, 0, 0, 0, 0, 0],
    '\x86R.',
  );
  assert.equal(unpickle(i8, opts).value, 1200);
});

test('PyTorch storages and tensors become inert records', () => {
  // _rebuild_tensor_v2(BINPERSID(('storage', FloatStorage, '0', 'cpu', 6)), 0, (2, 3), (3, 1), False, OrderedDict())
  const data = bytes(
    '\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQ',
    'K\x00K\x02K\x03\x86K\x03K\x01\x86\x89ccollections\nOrderedDict\n)RtR.',
  );
  const { value } = unpickle(data, opts);
  assert.ok(
    value !== null &&
      typeof value === 'object' &&
      !(value instanceof Uint8Array) &&
      !(value instanceof PickleDict) &&
      value.kind === 'tensor',
  );
  assert.deepEqual([...value.shape], [2, 3]);
  assert.deepEqual([...value.stride], [3, 1]);
  assert.equal(value.storageOffset, 0);
  assert.equal(value.storage.dtype, 'F32');
  assert.equal(value.storage.key, '0');
  assert.equal(value.storage.numel, 6);
  // Legacy 6-field storage ids and unknown persistent ids are refused.
  refuses(
    bytes('\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06NtQ.'),
    /6 fields/,
  );
  refuses(bytes('\x80\x02X\x03\x00\x00\x00abcQ.'), /unknown persistent id/);
});

test('malformed and truncated pickles fail clearly', () => {
  refuses(bytes('\x80\x02K\x01'), /ends at offset 4 without a STOP/);
  refuses(bytes('\x80\x02X\xff\xff\xff\x7fabc.'), /needs 2\.1 GB for a string/);
  refuses(bytes('\x80\x02\x8b\xff\xff\x00\x00.'), /65535-byte integer/);
  refuses(bytes('\x80\x02\xff.'), /unknown pickle opcode 0xff at offset 2/);
  refuses(bytes('\x80\x09.'), /protocol 9/);
  refuses(bytes('\x80\x020.'), /empty stack/);
  refuses(bytes('\x80\x02e.'), /MARK that was never opened/);
  refuses(bytes('\x80\x02K\x01K\x02a.'), /appends to an int/);
  refuses(bytes('\x80\x02\x82\x01.'), /extension registry/);
  refuses(bytes('\x80\x05\x97.'), /out-of-band/);
  refuses(bytes('I12x\n.'), /invalid INT literal/);
});

test('hostile memo, nesting and stack sizes are refused, not obeyed', () => {
  refuses(bytes('\x80\x02j\xf0\xff\xff\xff.'), /memo slot 4294967280, which was never stored/);
  const depth = 50_000;
  refuses(bytes('\x80\x02', ']'.repeat(depth), 'a'.repeat(depth - 1), '.'), /deeper than 200 levels/);
  refuses(bytes('\x80\x02', '('.repeat(depth), '.'), /MARKs deeper than 200/);
  refuses(bytes('\x80\x02', 'N'.repeat((1 << 20) + 1), '.'), /stack grows past/);
  // A list that contains itself (built through the memo) is fine: it is data, and nothing walks it blindly here.
  const { value } = unpickle(bytes('\x80\x02]q\x00h\x00a.'), opts);
  assert.ok(
    value !== null &&
      typeof value === 'object' &&
      !(value instanceof Uint8Array) &&
      !(value instanceof PickleDict) &&
      value.kind === 'list',
  );
  assert.equal(value.items[0], value);
});

test('marks separate runs as in CPython: POP can drop a bare mark, nothing pops below one', () => {
  assert.deepEqual(plain(unpickle(bytes('\x80\x02K\x01(0K\x02\x86.'), opts).value), { tuple: [1, 2] });
  refuses(bytes('\x80\x02K\x01(\x85.'), /pops from an empty stack/);
});

test('sparse memo slots are accepted and stay bounded', () => {
  const { value } = unpickle(bytes('\x80\x02K\x07r\x00\x00\x00\x10j\x00\x00\x00\x10\x86.'), opts);
  assert.deepEqual(plain(value), { tuple: [7, 7] });
});
