// A Fedify peer for Agora's federation tests (tests/it/fedify.rs): an independent ActivityPub
// implementation on 127.0.0.1. Two scenarios (PEER_SCENARIO):
//
//   follow-user (default)  follows an Agora user, checks that Agora's signed Accept verifies in
//                          Fedify (with negative controls), and unfollows again.
//   group-reply            follows an Agora group (FEP-1b12), waits for a line on stdin naming a
//                          new thread, receives the group's Announces of it, replies with a
//                          Create{Note} addressed as Mastodon does (to Public, cc the thread's
//                          author, not the group), and waits for the group's Announce of that
//                          Create.
//
// Environment:
//   AGORA_URL         Agora's base URL, e.g. http://127.0.0.1:4000 (required)
//   AGORA_USER        follow-user: the local user to follow (default: alice)
//   AGORA_GROUP       group-reply: the group to follow (default: verkehr)
//   PEER_TIMEOUT_MS   give up after this long (default: 30000)
//   PEER_HANDSHAKE=1  follow-user: after the Accept, print {"event":"waiting-for-undo"} and wait
//                     for a line on stdin before sending the Undo (lets the caller inspect Agora)
//   PEER_LOG=debug    Fedify's own log level on stderr (default: warning)
//   PEER_FIRST_KNOCK  the signature spec Fedify tries first: draft-cavage-http-signatures-12
//                     (default) or rfc9421 (then Fedify falls back to draft-cavage on a 401)
//
// group-reply reads one line of JSON on stdin after {"event":"waiting-for-thread"}: the thread as
// Agora's API returned it ({"id":…,"url":…,"ap_id":…}).
//
// stdout carries one JSON object per line ({"event": ...}); the last one is {"event":"done"} on
// success (exit 0) or {"event":"failed","error":...} (exit 1). Fedify's log goes to stderr.

import {
  createFederation,
  generateCryptoKeyPair,
  MemoryKvStore,
  verifyRequestDetailed,
} from "@fedify/fedify";
import {
  Accept,
  Activity,
  type Actor,
  Announce,
  Create,
  Endpoints,
  Follow,
  isActor,
  Mention,
  Note,
  type Object as APObject,
  Person,
  PUBLIC_COLLECTION,
  Undo,
} from "@fedify/vocab";
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
const scenario = Deno.env.get("PEER_SCENARIO") ?? "follow-user";
if (scenario !== "follow-user" && scenario !== "group-reply") {
  fail(`unknown PEER_SCENARIO ${scenario}`);
}
const user = Deno.env.get("AGORA_USER") ?? "alice";
const groupSlug = Deno.env.get("AGORA_GROUP") ?? "verkehr";
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
/** URLs fetched with GET (by Fedify's document loader, mostly). */
const fetched = new Set<string>();
globalThis.fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
  const request = new Request(input, init);
  if (request.method === "GET") fetched.add(request.url);
  const body = request.method === "POST" ? await request.clone().text() : "";
  const response = await realFetch(request);
  const sent = body ? JSON.parse(body) : null;
  emit("http-out", {
    method: request.method,
    url: request.url,
    signature: signatureScheme(request.headers),
    ...cavageFields(request.headers),
    ...(sent ? { type: sent.type ?? null, integrityProof: "proof" in sent } : {}),
    status: response.status,
    // Why the receiver refused it, when it did.
    ...(response.status >= 400 ? { answer: await response.clone().text() } : {}),
  });
  return response;
};

// Like most Fedify servers: an RSA key for HTTP signatures (the actor's publicKey) and an Ed25519
// key for Object Integrity Proofs, so the activities Agora receives carry a `proof` as well. The
// RSA key has 2048 bits, as Mastodon's: generateCryptoKeyPair makes 4096-bit keys, which take
// 1-5 s to generate here, and far longer on a busy machine (a run timed out before listening).
const rsaKeyPair = await crypto.subtle.generateKey(
  {
    name: "RSASSA-PKCS1-v1_5",
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: "SHA-256",
  },
  true,
  ["sign", "verify"],
) as CryptoKeyPair;
const keyPairs = [rsaKeyPair, await generateCryptoKeyPair("Ed25519")];
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

// The peer's own posts, dereferenceable as Mastodon's are: the Note at /notes/{id}, its Create at
// /notes/{id}/activity.
const notes = new Map<string, Note>();
const creates = new Map<string, Create>();
federation.setObjectDispatcher(Note, "/notes/{id}", (_ctx, { id }) => notes.get(id) ?? null);
federation.setObjectDispatcher(
  Create,
  "/notes/{id}/activity",
  (_ctx, { id }) => creates.get(id) ?? null,
);

let resolveAccept: (accept: Accept) => void;
const accepted = new Promise<Accept>((resolve) => (resolveAccept = resolve));

/** An Announce the inbox took, with what Fedify made of its object. */
type Announced = {
  announce: Announce;
  object: APObject | null;
  /** The object's object when the object is an activity (the Note of an announced Create). */
  inner: APObject | null;
};
const announced: Announced[] = [];
let announceWaiters: (() => void)[] = [];

/** Waits for an Announce the inbox verified that satisfies `pred`. */
async function waitForAnnounce(pred: (a: Announced) => boolean): Promise<Announced> {
  for (;;) {
    const hit = announced.find(pred);
    if (hit != null) return hit;
    await new Promise<void>((resolve) => announceWaiters.push(resolve));
  }
}

/** The fields of a Note (or other object) the tests compare. */
function describe(o: APObject | null): Json | null {
  if (o == null) return null;
  return {
    type: o.constructor.name,
    id: o.id?.href ?? null,
    ...(o instanceof Activity ? { actor: o.actorId?.href ?? null } : {
      name: o.name?.toString() ?? null,
      attributedTo: o.attributionId?.href ?? null,
      audience: o.audienceId?.href ?? null,
      context: o.contextIds[0]?.href ?? null,
      inReplyTo: o.replyTargetId?.href ?? null,
      to: o.toIds.map((u) => u.href),
      cc: o.ccIds.map((u) => u.href),
    }),
  };
}

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
  .on(Announce, async (ctx, announce) => {
    // Fedify's default: an embedded object from the announcer's origin is used as it is; one
    // from another origin is fetched again from its own server (crossOrigin: "ignore").
    let object: APObject | null = null;
    let inner: APObject | null = null;
    let error: string | null = null;
    try {
      object = await announce.getObject({
        documentLoader: ctx.documentLoader,
        contextLoader: ctx.contextLoader,
      });
      if (object instanceof Activity) {
        inner = await object.getObject({
          documentLoader: ctx.documentLoader,
          contextLoader: ctx.contextLoader,
        });
      }
    } catch (e) {
      error = String(e);
    }
    emit("announce-received", {
      verified: true,
      recipient: ctx.recipient,
      id: announce.id?.href ?? null,
      actor: announce.actorId?.href ?? null,
      objectId: announce.objectId?.href ?? null,
      object: describe(object),
      inner: describe(inner),
      error,
    });
    announced.push({ announce, object, inner });
    const waiters = announceWaiters;
    announceWaiters = [];
    for (const wake of waiters) wake();
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

/** The `object` of a delivered activity as sent: its type when embedded, or "reference". */
function sentObject(body: Json | null): Json {
  const object = body?.object;
  if (object == null) return {};
  if (typeof object === "string") return { objectType: "reference", objectId: object };
  const o = object as Json;
  const inner = o.object;
  return {
    objectType: o.type ?? null,
    objectId: o.id ?? null,
    ...(inner != null
      ? {
        innerType: typeof inner === "string" ? "reference" : (inner as Json).type ?? null,
        innerId: typeof inner === "string" ? inner : (inner as Json).id ?? null,
      }
      : {}),
    objectHasContext: "@context" in o,
    objectHasProof: "proof" in o,
  };
}

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
    userAgent: request.headers.get("user-agent"),
    status: response.status,
    signature: signatureScheme(request.headers),
    ...cavageFields(request.headers),
    ...(isInbox
      ? {
        contentType: request.headers.get("content-type"),
        digest: request.headers.get("digest"),
        date: request.headers.get("date"),
        type: body?.type ?? null,
        id: body?.id ?? null,
        actor: body?.actor ?? null,
        ...sentObject(body),
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
emit("listening", { origin, actor: me.href, scenario });

const host = new URL(agora).host;

/** WebFinger by hand (Fedify's client speaks https only; Agora here is http), then the actor. */
async function discover(name: string): Promise<Actor> {
  const jrdResponse = await realFetch(
    `${agora}/.well-known/webfinger?resource=${encodeURIComponent(`acct:${name}@${host}`)}`,
    { headers: { accept: "application/jrd+json" } },
  );
  if (!jrdResponse.ok) fail(`WebFinger for ${name}@${host} answered ${jrdResponse.status}`);
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
  return target;
}

/** Polls an Agora actor's followers collection until it has `want` items. */
async function waitForFollowers(target: Actor, want: number): Promise<void> {
  const followersUrl = target.followersId ?? fail(`${target.id} has no followers collection`);
  let total = -1;
  for (let i = 0; i < 100; i++) {
    const res = await realFetch(followersUrl, {
      headers: { accept: "application/activity+json" },
    });
    if (!res.ok) fail(`GET followers answered ${res.status}`);
    total = Number((await res.json()).totalItems);
    if (total === want) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  emit("followers", { totalItems: total, expected: want });
  if (total !== want) fail(`Agora lists ${total} followers, expected ${want}`);
}

/** Sends a Follow to `target` and waits for its Accept. */
async function followAndWait(target: Actor): Promise<Follow> {
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
  await waitForFollowers(target, 1);
  return follow;
}

/** One line from stdin (without the newline). */
const stdin = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
let stdinBuffer = "";
async function readLine(): Promise<string> {
  for (;;) {
    const nl = stdinBuffer.indexOf("\n");
    if (nl >= 0) {
      const line = stdinBuffer.slice(0, nl);
      stdinBuffer = stdinBuffer.slice(nl + 1);
      return line;
    }
    const { value, done } = await stdin.read();
    if (done) fail("stdin ended before the expected line");
    stdinBuffer += value;
  }
}

async function followUser(): Promise<void> {
  const target = await discover(user);
  const follow = await followAndWait(target);

  // Negative controls: the inbox that verified Agora's Accept must refuse the same Accept when
  // its body is changed (Digest recomputed, so only the signature can catch it) and when it is
  // unsigned.
  async function control(name: string, headers: Headers, body: Json): Promise<void> {
    const text = JSON.stringify(body);
    const sha = new Uint8Array(
      await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)),
    );
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
    await readLine();
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
  await waitForFollowers(target, 0);
}

async function groupReply(): Promise<void> {
  const group = await discover(groupSlug);
  const groupId = group.id!.href;
  await followAndWait(group);

  // The caller creates a thread in the group now and tells us about it.
  emit("waiting-for-thread");
  const thread = JSON.parse(await readLine());
  if (typeof thread.ap_id !== "string") fail(`no thread to reply to: ${JSON.stringify(thread)}`);
  const threadNote: string = thread.ap_id;
  emit("thread", { id: thread.id, url: thread.url, apId: threadNote });

  // The group announces the author's Create (for FEP-1b12 servers) and the bare Note (for
  // Mastodon), both signed by the group.
  const byGroup = (a: Announced) => a.announce.actorId?.href === groupId;
  const ofCreate = await waitForAnnounce((a) =>
    byGroup(a) && a.object instanceof Create && a.inner?.id?.href === threadNote
  );
  const ofNote = await waitForAnnounce((a) =>
    byGroup(a) && a.object instanceof Note && a.object.id?.href === threadNote
  );
  emit("thread-announced", {
    createAnnounce: ofCreate.announce.id?.href ?? null,
    noteAnnounce: ofNote.announce.id?.href ?? null,
  });
  const note = ofNote.object as Note;
  const authorId = note.attributionId ?? fail("the thread's Note has no attributedTo");
  const author = await ctx.lookupObject(authorId);
  if (!isActor(author)) fail(`${authorId} is not an actor`);
  const authorName = author.preferredUsername?.toString() ?? fail(`${authorId} has no name`);
  emit("thread-author", {
    id: authorId.href,
    handle: `@${authorName}@${host}`,
    inbox: author.inboxId?.href ?? null,
    sharedInbox: author.endpoints?.sharedInbox?.href ?? null,
  });

  // The reply as Mastodon sends it: to Public, cc (and a Mention of) the parent's author, not
  // addressed to the group; delivered to the author's inbox.
  const key = crypto.randomUUID();
  const published = Temporal.Now.instant();
  const reply = new Note({
    id: ctx.getObjectUri(Note, { id: key }),
    attribution: me,
    content: `<p><span class="h-card" translate="no"><a href="${authorId.href}" ` +
      `class="u-url mention">@<span>${authorName}</span></a></span> Grüße von Fedify!</p>`,
    replyTarget: new URL(threadNote),
    to: PUBLIC_COLLECTION,
    cc: authorId,
    tags: [new Mention({ href: authorId, name: `@${authorName}@${host}` })],
    published,
    url: ctx.getObjectUri(Note, { id: key }),
  });
  const create = new Create({
    id: ctx.getObjectUri(Create, { id: key }),
    actor: me,
    object: reply,
    to: PUBLIC_COLLECTION,
    cc: authorId,
    published,
  });
  notes.set(key, reply);
  creates.set(key, create);
  try {
    await ctx.sendActivity({ identifier: PEER }, author, create, {
      immediate: true,
      preferSharedInbox: true,
    });
  } catch (e) {
    fail(`sending the reply failed: ${e}`);
  }
  emit("reply-sent", { id: create.id!.href, noteId: reply.id!.href, to: author.inboxId?.href });

  // The group announces the reply it accepted.
  const ofReply = await waitForAnnounce((a) =>
    byGroup(a) && a.announce.objectId?.href === create.id!.href
  );
  emit("reply-announced", {
    id: ofReply.announce.id?.href ?? null,
    // Fedify does not trust an embedded object from another origin than the Announce's: it
    // fetches the Create again from here.
    refetched: fetched.has(create.id!.href),
    object: describe(ofReply.object),
    inner: describe(ofReply.inner),
  });
}

if (scenario === "group-reply") {
  await groupReply();
} else {
  await followUser();
}

// Lets the inbox requests in flight finish (and log) before the last line.
await server.shutdown();
emit("done");
Deno.exit(0);
