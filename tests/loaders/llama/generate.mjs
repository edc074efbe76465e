/*
 * generate.mjs - greedy generation with llama.cpp (node-llama-cpp) from a
 * GGUF file path, for tests/e2e/test_llama.py.
 *
 * llama.cpp maps the model file (useMmap: true), so on an hfmount mount its
 * weights come in through page faults on the FUSE file. CPU only, with the
 * prebuilt binary shipped in @node-llama-cpp/linux-x64: nothing is built or
 * downloaded (build: "never"). Decoding is greedy (temperature 0) on one
 * thread, so the same file always gives the same N tokens (an end-of-text
 * token does not stop it).
 *
 * Usage: node generate.mjs MODEL.gguf [N_TOKENS] [PROMPT]
 * Prints one JSON line:
 *   {"model": ..., "useMmap": true, "prompt": ..., "promptTokens": [...],
 *    "tokens": [...], "text": "..."}
 * Exits 2 on bad arguments, 1 (with the error on stderr) on any failure.
 */
import process from "node:process";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const DEFAULT_PROMPT = "once upon a time there was a little model";

async function main() {
    const [modelPath, nArg, promptArg] = process.argv.slice(2);
    const nTokens = nArg === undefined ? 16 : Number(nArg);
    if (!modelPath || !Number.isInteger(nTokens) || nTokens < 1) {
        console.error("usage: node generate.mjs MODEL.gguf [N_TOKENS] [PROMPT]");
        process.exit(2);
    }
    const prompt = promptArg ?? DEFAULT_PROMPT;

    const llama = await getLlama({
        gpu: false,
        build: "never",
        progressLogs: false,
        logLevel: LlamaLogLevel.error,
    });
    const model = await llama.loadModel({modelPath, useMmap: true, gpuLayers: 0});
    if (!model.useMmap)
        throw new Error("llama.cpp did not map the model (useMmap is false)");
    const context = await model.createContext({contextSize: 256, threads: 1});
    const sequence = context.getSequence();

    const promptTokens = [model.tokens.bos, ...model.tokenize(prompt)];
    const tokens = [];
    for await (const token of sequence.evaluate(promptTokens, {
        temperature: 0,
        yieldEogToken: true, // always N tokens, even past an end-of-text
    })) {
        tokens.push(token);
        if (tokens.length >= nTokens)
            break;
    }
    const out = {
        model: modelPath,
        useMmap: model.useMmap,
        prompt,
        promptTokens,
        tokens,
        text: model.detokenize(tokens),
    };
    await context.dispose();
    await model.dispose();
    await llama.dispose();
    process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((err) => {
    console.error(err && err.stack ? err.stack : String(err));
    process.exit(1);
});
