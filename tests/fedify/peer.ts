// A Fedify peer for Agora's federation test (tests/it/fedify.rs): an independent ActivityPub
// implementation on 127.0.0.1 that follows an Agora user, checks that Agora's signed Accept
// verifies in Fedify, and unfollows again.
//
// Environment:
//   AGORA_URL         Agora's base URL, e.g. http://127.0.0.1:4000 (required)
//   AGORA_USER        the local user to follow (default: alice)
//   PEER_TIMEOUT_MS   give up after this long (default: 30000)
//   PEER_HANDSHAKE=1  after the Accept, print {"event":"waiting-for-undo"} and wait for a line
//                     on stdin before sending the Undo (lets the caller inspect Agora first)
//   PEER_LOG=debug    Fedify's own log level on stderr (default: warning)
//   PEER_FIRST_KNOCK  the signature spec Fedify tries first: draft-cavage-http-signatures-12
//                     (default) or rfc9421 (then Fedify falls back to draft-cavage on a 401)
//
// stdout carries one JSON object per line ({"event": ...}); the last one is {"event":"done"} on
// success (exit 0) or {"event":"failed","error":...} (exit 1). Fedify's log goes to stderr.

import {
  createFederation,
  generateCryptoKeyPair,
  MemoryKvStore,
  verifyRequestDetailed,
} from "@fedify/fedify";
import { Accept, Activity, Endpoints, Follow, isActor, Person, Undo } from "@fedify/vocab";
import { configure, getStreamSink } from "@logtape/logtape";

type Json = Record<string, unknown>;

function emit(event: string, fields: Json = {}): void {
  console.log(JSON.stringify({ event, ms: Math.round(performance.now()), ...fields }));
}

function fail(error: string): never {
  emit("failed", { error });
  Deno.exit(1);
}

const agora = (Deno.env.get("AGORA_URL") ?? fail("AGORA_URL is not set")).replace(/\/+$/, "");
const user = Deno.env.get("AGORA_USER") ?? "alice";
const timeoutMs = Number(Deno.env.get("PEER_TIMEOUT_MS") ?? "30000");
const handshake = Deno.env.get("PEER_HANDSHAKE") === "1";
const logLevel = Deno.env.get("PEER_LOG") === "debug" ? "debug" : "warning";
const firstKnock = Deno.env.get("PEER_FIRST_KNOCK") === "rfc9421"
  ? "rfc9421"
  : "draft-cavage-http-signatures-12";

setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs);

await configure({
  sinks: { stderr: getStreamSink(Deno.stderr.writable) },
  loggers: [
    { category: "fedify", lowestLevel: logLevel, sinks: ["stderr"] },
    { category: ["logtape", "meta"], lowestLevel: "error", sinks: ["stderr"] },
  ],
});

/** Which HTTP signature scheme a request carries. */
function signatureScheme(headers: Headers): string {
  if (headers.has("signature-input")) return "rfc9421";
  if (headers.has("signature")) return "draft-cavage";
  return "none";
}

/** The `headers="..."` list of a draft-cavage Signature header. */
function cavageFields(headers: Headers): Json {
  const sig = headers.get("signature");
  if (sig == null || headers.has("signature-input")) return {};
  const field = (name: string) => sig.match(new RegExp(`${name}="([^"]*)"`))?.[1] ?? null;
  return {
    keyId: field("keyId"),
    algorithm: field("algorithm"),
    signedHeaders: field("headers"),
  };
}

// Every request Fedify (or this script) sends, with the signature scheme it used and the answer:
// shows whether Fedify had to double-knock.
const realFetch = globalThis.fetch;
globalThis.fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
  const request = new Request(input, init);
  const body = request.method === "POST" ? await request.clone().text() : "";
  const response = await realFetch(request);
  emit("http-out", {
    method: request.method,
    url: request.url,
    signature: signatureScheme(request.headers),
    ...cavageFields(request.headers),
    ...(body ? { integrityProof: "proof" in JSON.parse(body) } : {}),
    status: response.status,
  });
  return response;
};

// Like most Fedify servers: an RSA key for HTTP signatures (the actor's publicKey) and an Ed25519
// key for Object Integrity Proofs, so the activities Agora receives carry a `proof` as well.
const keyPairs = [
  await generateCryptoKeyPair("RSASSA-PKCS1-v1_5"),
  await generateCryptoKeyPair("Ed25519"),
];
const PEER = "peer";

const federation = createFederation<void>({
  kv: new MemoryKvStore(),
  // Agora runs on 127.0.0.1; Fedify refuses private addresses unless told otherwise.
  allowPrivateAddress: true,
  // Agora only speaks draft-cavage (it answers RFC 9421 with 401). Fedify would try RFC 9421
  // first and fall back on the 401; asking for draft-cavage first makes every run the same.
  firstKnock,
});

federation
  .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    if (identifier !== PEER) return null;
    const keys = await ctx.getActorKeyPairs(identifier);
    return new Person({
      id: ctx.getActorUri(identifier),
      preferredUsername: identifier,
      name: "Fedify peer",
      inbox: ctx.getInboxUri(identifier),
      endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
      publicKey: keys[0].cryptographicKey,
      assertionMethods: keys.map((k) => k.multikey),
    });
  })
  .setKeyPairsDispatcher((_ctx, identifier) => (identifier === PEER ? keyPairs : []));

let resolveAccept: (accept: Accept) => void;
const accepted = new Promise<Accept>((resolve) => (resolveAccept = resolve));

// Inbox listeners run only for activities whose signatures Fedify verified; unverified ones reach
// onUnverifiedActivity instead and are answered 401.
federation
  .setInboxListeners("/users/{identifier}/inbox", "/inbox")
  .on(Accept, (ctx, accept) => {
    emit("accept-received", {
      verified: true,
      recipient: ctx.recipient,
      id: accept.id?.href ?? null,
      actor: accept.actorId?.href ?? null,
      objectId: accept.objectId?.href ?? null,
    });
    resolveAccept(accept);
  })
  .on(Activity, (ctx, activity) => {
    emit("activity-received", {
      verified: true,
      recipient: ctx.recipient,
      id: activity.id?.href ?? null,
      type: activity.constructor.name,
    });
  })
  .onUnverifiedActivity((ctx, activity, reason) => {
    emit("activity-unverified", {
      verified: false,
      control: ctx.request.headers.get(CONTROL_HEADER),
      id: activity.id?.href ?? null,
      type: activity.constructor.name,
      reason: reason.type,
    });
  })
  .onError((_ctx, error) => emit("inbox-error", { error: String(error) }));

let origin = "";

/** Marks the peer's own negative-control requests to its inbox. */
const CONTROL_HEADER = "x-peer-control";
/** Agora's Accept delivery as it arrived, for the negative controls. */
type Recorded = { headers: Headers; body: Json };
let agoraAccept: Recorded | null = null;

async function handle(request: Request): Promise<Response> {
  const url = new URL(request.url);
  const isInbox = request.method === "POST" && url.pathname.endsWith("/inbox");
  // An independent check of the same request, to say which scheme and key verified.
  let check: Json = {};
  if (isInbox) {
    const ctx = federation.createContext(new URL(origin), undefined);
    const result = await verifyRequestDetailed(request.clone(), {
      documentLoader: ctx.documentLoader,
      contextLoader: ctx.contextLoader,
    });
    check = result.verified
      ? { httpSignatureVerified: true, verifiedKeyId: result.key.id?.href ?? null }
      : { httpSignatureVerified: false, reason: result.reason.type };
  }
  const text = isInbox ? await request.clone().text() : "";
  const body = isInbox ? JSON.parse(text || "null") : null;
  if (isInbox && body?.type === "Accept" && !request.headers.has(CONTROL_HEADER)) {
    agoraAccept ??= { headers: new Headers(request.headers), body };
  }
  const response = await federation.fetch(request, { contextData: undefined });
  emit("http-in", {
    control: request.headers.get(CONTROL_HEADER),
    method: request.method,
    path: url.pathname,
    accept: request.headers.get("accept"),
    status: response.status,
    signature: signatureScheme(request.headers),
    ...cavageFields(request.headers),
    ...(isInbox
      ? {
        contentType: request.headers.get("content-type"),
        userAgent: request.headers.get("user-agent"),
        digest: request.headers.get("digest"),
        date: request.headers.get("date"),
        type: body?.type ?? null,
        ldSignature: body != null && "signature" in body,
        integrityProof: body != null && "proof" in body,
        ...check,
      }
      : {}),
  });
  return response;
}

const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: () => {} },
  handle,
);
origin = `http://127.0.0.1:${server.addr.port}`;
const ctx = federation.createContext(new URL(origin), undefined);
const me = ctx.getActorUri(PEER);
emit("listening", { origin, actor: me.href });

// Fedify's WebFinger client speaks https only; Agora here is http, so finger by hand.
const host = new URL(agora).host;
const jrdResponse = await realFetch(
  `${agora}/.well-known/webfinger?resource=${encodeURIComponent(`acct:${user}@${host}`)}`,
  { headers: { accept: "application/jrd+json" } },
);
if (!jrdResponse.ok) fail(`WebFinger for ${user}@${host} answered ${jrdResponse.status}`);
const jrd = await jrdResponse.json();
const self = (jrd.links ?? []).find((l: Json) => l.rel === "self")?.href;
if (typeof self !== "string") fail(`WebFinger gave no self link: ${JSON.stringify(jrd)}`);
emit("webfinger", { subject: jrd.subject, self });

const target = await ctx.lookupObject(self);
if (!isActor(target)) fail(`${self} is not an actor: ${target?.constructor.name ?? "nothing"}`);
emit("agora-actor", {
  id: target.id?.href ?? null,
  type: target.constructor.name,
  inbox: target.inboxId?.href ?? null,
  sharedInbox: target.endpoints?.sharedInbox?.href ?? null,
  publicKey: (await target.getPublicKey())?.id?.href ?? null,
  followers: target.followersId?.href ?? null,
});
const followersUrl = target.followersId ?? fail(`${self} has no followers collection`);

async function followers(): Promise<number> {
  const res = await realFetch(followersUrl, {
    headers: { accept: "application/activity+json" },
  });
  if (!res.ok) fail(`GET followers answered ${res.status}`);
  const doc = await res.json();
  return Number(doc.totalItems);
}

/** Polls Agora's followers collection until it has `want` items. */
async function waitForFollowers(want: number): Promise<void> {
  let total = -1;
  for (let i = 0; i < 100; i++) {
    total = await followers();
    if (total === want) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  emit("followers", { totalItems: total, expected: want });
  if (total !== want) fail(`Agora lists ${total} followers, expected ${want}`);
}

const follow = new Follow({
  id: new URL(`${origin}/follows/${crypto.randomUUID()}`),
  actor: me,
  object: target.id,
});
try {
  await ctx.sendActivity({ identifier: PEER }, target, follow, { immediate: true });
} catch (e) {
  fail(`sending the Follow failed: ${e}`);
}
emit("follow-sent", { id: follow.id!.href, to: target.inboxId?.href ?? null });

const accept = await accepted;
if (accept.objectId?.href !== follow.id!.href) {
  fail(`the Accept's object is ${accept.objectId?.href}, not our Follow ${follow.id!.href}`);
}
if (accept.actorId?.href !== target.id?.href) {
  fail(`the Accept comes from ${accept.actorId?.href}, not ${target.id?.href}`);
}
await waitForFollowers(1);

// Negative controls: the inbox that verified Agora's Accept must refuse the same Accept when its
// body is changed (Digest recomputed, so only the signature can catch it) and when it is unsigned.
async function control(name: string, headers: Headers, body: Json): Promise<void> {
  const text = JSON.stringify(body);
  const sha = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  headers.set("digest", `SHA-256=${btoa(String.fromCharCode(...sha))}`);
  headers.set(CONTROL_HEADER, name);
  headers.delete("content-length");
  const res = await realFetch(`${origin}/inbox`, { method: "POST", headers, body: text });
  await res.body?.cancel();
  emit("control", { case: name, status: res.status });
  if (res.status !== 401) fail(`Fedify answered ${res.status} to the ${name} Accept, not 401`);
}
// (A cast: TypeScript does not see that the request handler has set it.)
const recorded = (agoraAccept as Recorded | null) ?? fail("Agora's Accept was not recorded");
const original = recorded.body;
await control("tampered", new Headers(recorded.headers), {
  ...original,
  id: `${original.id}-tampered`,
});
const unsigned = new Headers(recorded.headers);
unsigned.delete("signature");
await control("unsigned", unsigned, { ...original, id: `${original.id}-unsigned` });

if (handshake) {
  emit("waiting-for-undo");
  const reader = Deno.stdin.readable.getReader();
  await reader.read();
  reader.releaseLock();
}

const undo = new Undo({
  id: new URL(`${origin}/undos/${crypto.randomUUID()}`),
  actor: me,
  object: follow,
});
try {
  await ctx.sendActivity({ identifier: PEER }, target, undo, { immediate: true });
} catch (e) {
  fail(`sending the Undo failed: ${e}`);
}
emit("undo-sent", { id: undo.id!.href });
await waitForFollowers(0);

emit("done");
await server.shutdown();
Deno.exit(0);
