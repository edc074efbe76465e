// node gguf_meta.mjs FILE
// Reads the metadata of a local GGUF file with @huggingface/gguf and prints
// it as JSON (bigints as strings).
import { gguf } from '@huggingface/gguf';

const [file] = process.argv.slice(2);
if (!file) {
  console.error('usage: node gguf_meta.mjs FILE');
  process.exit(2);
}
const { metadata, tensorInfos } = await gguf(file, { allowLocalFile: true });
const out = {
  metadata,
  tensors: tensorInfos.map((t) => ({ name: t.name, shape: t.shape, dtype: t.dtype })),
};
console.log(JSON.stringify(out, (k, v) => (typeof v === 'bigint' ? v.toString() : v)));
