// check_fakehub.mjs - holds tests/fakehub to a client nobody here wrote: @huggingface/hub.
//
// Usage: node tests/js/check_fakehub.mjs http://127.0.0.1:PORT   (or FAKEHUB_API=...)
// Needs `npm install --prefix tests/js` first. Exits 0 when every check passes; otherwise
// prints each mismatch on stderr and exits 1. Expected values come from GET /_fake/fixture,
// never from the fake's other answers, so a fake that drifts from its fixture fails here.

import { createHash } from "node:crypto";
import {
	downloadFile,
	fileDownloadInfo,
	listFiles,
	listModels,
	modelInfo,
	pathsInfo,
	whoAmI,
} from "@huggingface/hub";

const hubUrl = (process.argv[2] || process.env.FAKEHUB_API || "").replace(/\/$/, "");
if (!hubUrl) {
	console.error("usage: node check_fakehub.mjs <fakehub api url>  (or set FAKEHUB_API)");
	process.exit(2);
}

const ALICE = "hf_alice_read_0123456789abcdef";
const BOB = "hf_bob_read_0123456789abcdef01";
const TINY = { type: "model", name: "acme/tiny" };

const failures = [];
let checks = 0;
function expect(what, actual, expected) {
	checks++;
	if (actual !== expected) {
		failures.push(`${what}: got ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
	}
}
async function step(name, fn) {
	try {
		await fn();
	} catch (err) {
		failures.push(`${name}: threw ${err?.name}: ${err?.message}`);
	}
}
const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");
const md5 = (buf) => createHash("md5").update(buf).digest("hex");
const gitOid = (buf) =>
	createHash("sha1").update(Buffer.concat([Buffer.from(`blob ${buf.length}\0`), buf])).digest("hex");

const fixture = await (await fetch(`${hubUrl}/_fake/fixture`)).json();
const tiny = fixture.repos.find((r) => r.type === "model" && r.id === "acme/tiny");
const mainFiles = tiny.commits[tiny.refs.main].files;
const prFiles = tiny.commits[tiny.refs["refs/pr/1"]].files;
const expectedDirs = new Set();
for (const path of Object.keys(mainFiles)) {
	const parts = path.split("/");
	for (let i = 1; i < parts.length; i++) expectedDirs.add(parts.slice(0, i).join("/"));
}

await step("listFiles recursive", async () => {
	const seen = new Map();
	for await (const e of listFiles({ repo: TINY, recursive: true, hubUrl })) {
		if (seen.has(e.path)) failures.push(`listFiles: duplicate ${e.path}`);
		seen.set(e.path, e);
	}
	const files = [...seen.values()].filter((e) => e.type === "file");
	const dirs = [...seen.values()].filter((e) => e.type === "directory");
	expect("listFiles file count", files.length, Object.keys(mainFiles).length);
	expect("listFiles directory count", dirs.length, expectedDirs.size);
	for (const e of files) {
		const want = mainFiles[e.path];
		if (!want) {
			failures.push(`listFiles: unexpected file ${e.path}`);
			continue;
		}
		expect(`listFiles ${e.path} size`, e.size, want.size);
		expect(`listFiles ${e.path} oid`, e.oid, want.oid);
		expect(`listFiles ${e.path} lfs.oid`, e.lfs?.oid ?? null, want.sha256);
	}
	for (const d of dirs) {
		if (!expectedDirs.has(d.path)) failures.push(`listFiles: unexpected directory ${d.path}`);
	}
});

await step("listFiles many/ (1500 entries, paginated)", async () => {
	const paths = [];
	for await (const e of listFiles({ repo: TINY, path: "many", hubUrl })) paths.push(e.path);
	expect("listFiles many/ count", paths.length, 1500);
	expect("listFiles many/ unique", new Set(paths).size, 1500);
	expect("listFiles many/ last", paths.at(-1), "many/f1499.txt");
});

await step("listFiles expand", async () => {
	let n = 0;
	for await (const e of listFiles({ repo: TINY, path: "nested/a", expand: true, hubUrl })) {
		n++;
		if (!e.lastCommit?.id || !e.lastCommit?.date) failures.push(`listFiles expand: ${e.path} has no lastCommit`);
	}
	expect("listFiles nested/a count", n, 2);
});

await step("fileDownloadInfo config.json", async () => {
	const info = await fileDownloadInfo({ repo: TINY, path: "config.json", hubUrl });
	expect("config.json size", info?.size, mainFiles["config.json"].size);
	expect("config.json etag", info?.etag, `"${mainFiles["config.json"].oid}"`);
});

await step("fileDownloadInfo config.json at refs/pr/1", async () => {
	const info = await fileDownloadInfo({ repo: TINY, path: "config.json", revision: "refs/pr/1", hubUrl });
	expect("refs/pr/1 config.json size", info?.size, prFiles["config.json"].size);
	expect("refs/pr/1 config.json etag", info?.etag, `"${prFiles["config.json"].oid}"`);
});

await step("fileDownloadInfo missing file", async () => {
	const info = await fileDownloadInfo({ repo: TINY, path: "no-such-file.txt", hubUrl });
	expect("missing file -> null (404 EntryNotFound)", info, null);
});

await step("fileDownloadInfo + downloadFile model.safetensors (LFS via CDN)", async () => {
	const want = mainFiles["model.safetensors"];
	const info = await fileDownloadInfo({ repo: TINY, path: "model.safetensors", hubUrl, accessToken: ALICE });
	expect("model.safetensors size", info?.size, want.size);
	const blob = await downloadFile({ repo: TINY, path: "model.safetensors", hubUrl, accessToken: ALICE });
	const buf = Buffer.from(await blob.arrayBuffer());
	expect("model.safetensors bytes length", buf.length, want.size);
	expect("model.safetensors sha256", sha256(buf), want.sha256);
	// fetch follows the 302, so the client sees the CDN's ETag (S3-style MD5 here), not
	// X-Linked-Etag: the behaviour reported in huggingface.js#1023.
	expect("model.safetensors etag (CDN)", info?.etag, `"${md5(buf)}"`);
});

await step("downloadFile config.json", async () => {
	const want = mainFiles["config.json"];
	const blob = await downloadFile({ repo: TINY, path: "config.json", hubUrl });
	const buf = Buffer.from(await blob.arrayBuffer());
	expect("config.json bytes length", buf.length, want.size);
	expect("config.json git oid", gitOid(buf), want.oid);
});

await step("downloadFile reserved bytes in path", async () => {
	const path = "dir with space/file #1?.txt";
	const info = await fileDownloadInfo({ repo: TINY, path: encodeURI(path).replace("#", "%23").replace("?", "%3F"), hubUrl });
	expect("reserved path size", info?.size, mainFiles[path].size);
});

await step("pathsInfo", async () => {
	const got = await pathsInfo({ repo: TINY, paths: ["config.json", "nested", "nope"], hubUrl });
	expect("pathsInfo count", got.length, 2);
	const cfg = got.find((p) => p.path === "config.json");
	expect("pathsInfo config.json oid", cfg?.oid, mainFiles["config.json"].oid);
	expect("pathsInfo nested type", got.find((p) => p.path === "nested")?.type, "directory");
});

await step("modelInfo", async () => {
	const info = await modelInfo({ name: "acme/tiny", hubUrl, additionalFields: ["sha"] });
	expect("modelInfo name", info.name, "acme/tiny");
	expect("modelInfo sha (revision HEAD)", info.sha, tiny.refs.main);
	expect("modelInfo private", info.private, false);
	expect("modelInfo updatedAt", info.updatedAt.toISOString(), tiny.commits[tiny.refs.main].date);
});

await step("listModels owner acme", async () => {
	const anon = [];
	for await (const m of listModels({ search: { owner: "acme" }, hubUrl })) anon.push(m.name);
	const alice = [];
	for await (const m of listModels({ search: { owner: "acme" }, hubUrl, accessToken: ALICE })) alice.push(m.name);
	expect("listModels anonymous sees acme/tiny", anon.includes("acme/tiny"), true);
	expect("listModels anonymous hides acme/private", anon.includes("acme/private"), false);
	expect("listModels alice sees acme/private", alice.includes("acme/private"), true);
});

await step("whoAmI", async () => {
	const me = await whoAmI({ credentials: { accessToken: ALICE }, hubUrl });
	expect("whoAmI name", me.name, "alice");
	expect("whoAmI type", me.type, "user");
	expect("whoAmI role", me.auth?.accessToken?.role, "read");
	expect("whoAmI orgs", me.orgs?.map((o) => o.name).join(","), "acme");
});

await step("gated repo", async () => {
	const repo = { type: "model", name: "meta-llama/Llama-3.1-8B-Instruct" };
	const llama = fixture.repos.find((r) => r.id === repo.name);
	const want = llama.commits[llama.refs.main].files["config.json"];
	const info = await fileDownloadInfo({ repo, path: "config.json", hubUrl, accessToken: ALICE });
	expect("gated config.json etag (granted)", info?.etag, `"${want.oid}"`);
	let status = null;
	try {
		await fileDownloadInfo({ repo, path: "config.json", hubUrl, accessToken: BOB });
	} catch (err) {
		status = err.statusCode;
	}
	expect("gated config.json, not granted -> HubApiError status", status, 403);
});

if (failures.length) {
	console.error(`check_fakehub: ${failures.length} of ${checks}+ checks failed:`);
	for (const f of failures) console.error("  - " + f);
	process.exit(1);
}
console.log(`check_fakehub: ${checks} checks passed against ${hubUrl}`);
