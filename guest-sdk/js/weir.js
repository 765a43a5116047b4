// The Weir guest SDK for JavaScript: write a transform as one function.
//
//     import * as weir from "./weir.js";
//
//     export default weir.transform({ columns: ["section", "dt", "hr"] }, (record) => {
//       const event = record.json();
//       const metadata = weir.field(event, "metadata", "object");
//       ...
//       return weir.accept({ section, dt: weir.utcDate(ms), hr: weir.utcHour(ms) });
//     });
//
// The function answers each record with `weir.accept(partition, body)` or
// `weir.reject(code, message)`; throwing `weir.reject(...)` does the same. Any other exception
// sends the record to the failed location with its message, and the host runs the next record
// in a fresh instance.
//
// This module is plain JavaScript: test a transform with `node --test`, without WebAssembly.
// `weir transform build` turns it into a WebAssembly component of the `weir:transform` world
// (guest-sdk/wit), with a JavaScript engine inside and no imports but the host's log.
//
// The declared transform, the log hook and the brands of answers live on globalThis under
// registered symbols, so a transform and the build's glue agree even when each imports its own
// copy of this file.

const REGISTERED = Symbol.for("weir.transform");
const LOG = Symbol.for("weir.log");
const ANSWER = Symbol.for("weir.answer");
const REPEATED = Symbol.for("weir.repeated");
const COLUMN = /^[a-z0-9_]{1,64}$/;
/** Nesting deeper than this is refused, as the Rust SDK (serde_json) refuses it. */
const MAX_DEPTH = 128;
const DECODER = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const ENCODER = new TextEncoder();

/** One record from the stream. */
export class Record {
  /**
   * @param {Uint8Array} data the record's bytes
   * @param {string} partitionKey the Kinesis partition key
   * @param {string} sequenceNumber the Kinesis sequence number
   * @param {number} arrivalMs arrival time in Kinesis, in milliseconds since the epoch: the
   *   transform's only clock
   */
  constructor(data, partitionKey = "", sequenceNumber = "", arrivalMs = 0) {
    this.data = typeof data === "string" ? ENCODER.encode(data) : data;
    this.partitionKey = partitionKey;
    this.sequenceNumber = sequenceNumber;
    this.arrivalMs = arrivalMs;
  }

  /** The data as UTF-8 text; rejects (`invalid_json`) data that is not UTF-8. */
  text() {
    try {
      return DECODER.decode(this.data);
    } catch (error) {
      throw reject("invalid_json", `the record is not UTF-8: ${error.message}`);
    }
  }

  /**
   * The data as one strict JSON value (RFC 8259): UTF-8 without a byte-order mark, no NaN or
   * Infinity, no lone surrogates, at most 128 levels deep, nothing after the value. Objects
   * are plain objects, as `JSON.parse` makes them (a `__proto__` key is an own property), and
   * remember repeated keys, which `field` refuses. Anything else is rejected with
   * `invalid_json`.
   */
  json() {
    const text = this.text();
    try {
      return parseJson(text);
    } catch (error) {
      if (error instanceof SyntaxError) {
        throw reject("invalid_json", `the record is not JSON: ${error.message}`);
      }
      throw error;
    }
  }
}

/**
 * Parses strict JSON; a SyntaxError says what is wrong. The engine's `JSON.parse` does the work
 * (it reads RFC 8259 and nothing else, natively); what it lets through is checked after, in
 * one walk: nesting, lone surrogates (decoded text has them only from `\u` escapes) and
 * repeated keys (its objects keep the last). A text whose keys did repeat is read again by
 * `parseRecordingRepeats`, which notes them.
 */
function parseJson(text) {
  const value = JSON.parse(text);
  const keys = isContainer(value) ? walk(value, 0) : 0;
  if (text.includes("\\u")) refuseLoneSurrogates(value);
  if (keys > 0 && keys !== keysIn(text)) return parseRecordingRepeats(text);
  return value;
}

function isContainer(value) {
  return typeof value === "object" && value !== null;
}

/**
 * Checks the nesting below a container; returns the number of object keys in it. Interpreted
 * on every record, so it does as little as it can: no calls for scalars.
 */
function walk(container, depth) {
  if (depth >= MAX_DEPTH) throw new SyntaxError(`nested deeper than ${MAX_DEPTH} levels`);
  const items = Array.isArray(container) ? container : Object.values(container);
  let keys = items === container ? 0 : items.length;
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (typeof item === "object" && item !== null) keys += walk(item, depth + 1);
  }
  return keys;
}

/** Whether a string is Unicode text: no lone surrogate, which only a `\\u` escape can write. */
const wellFormed = String.prototype.isWellFormed
  ? (text) => text.isWellFormed()
  : (text) => !LONE_SURROGATE.test(text);

/** Refuses a string or key holding a lone surrogate. */
function refuseLoneSurrogates(value) {
  const strings = [value];
  while (strings.length > 0) {
    const item = strings.pop();
    if (typeof item === "string") {
      if (!wellFormed(item)) throw new SyntaxError("lone surrogate in \\u escape");
    } else if (isContainer(item)) {
      // One at a time: spreading a long array into arguments would overflow.
      const inner = Array.isArray(item) ? item : Object.entries(item).flat();
      for (let i = 0; i < inner.length; i++) strings.push(inner[i]);
    }
  }
}

/**
 * How many keys valid JSON `text` writes: outside strings, a colon follows each key. Split at
 * quotes (natively: a regular expression over the text costs several times more, interpreted),
 * the pieces are by turns outside and inside strings, but for a quote escaped inside a string,
 * which an odd run of backslashes before it tells.
 */
function keysIn(text) {
  const pieces = text.split('"');
  let keys = 0;
  let inside = false;
  for (let i = 0; i < pieces.length; i++) {
    const piece = pieces[i];
    if (!inside) {
      for (let at = piece.indexOf(":"); at >= 0; at = piece.indexOf(":", at + 1)) keys++;
    } else if (piece.endsWith("\\") && escapesNext(piece)) {
      continue;
    }
    inside = !inside;
  }
  return keys;
}

/** Whether `piece` ends in an odd run of backslashes (so the character after it is escaped). */
function escapesNext(piece) {
  let run = 0;
  while (piece.charCodeAt(piece.length - 1 - run) === 0x5c) run++;
  return run % 2 === 1;
}

/** Parses strict JSON character by character, noting each object's repeated keys. */
function parseRecordingRepeats(text) {
  let at = 0;
  const fail = (what) => {
    throw new SyntaxError(`${what} at character ${at}`);
  };
  const space = () => {
    for (;;) {
      const c = text.charCodeAt(at);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) at++;
      else return;
    }
  };
  const literal = (word, value) => {
    if (text.startsWith(word, at)) {
      at += word.length;
      return value;
    }
    return fail("unexpected character");
  };
  const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
  const number = () => {
    NUMBER.lastIndex = at;
    const match = NUMBER.exec(text);
    if (match === null) return fail("invalid number");
    at = NUMBER.lastIndex;
    // Beyond any double this is ±Infinity, which `field` refuses where it is read.
    return Number(match[0]);
  };
  const ESCAPES = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
  const hex4 = () => {
    const digits = text.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(digits)) fail("invalid \\u escape");
    at += 4;
    return parseInt(digits, 16);
  };
  const string = () => {
    at++; // the opening quote
    let out = "";
    let run = at;
    for (;;) {
      const c = text.charCodeAt(at);
      if (c === 0x22) {
        out += text.slice(run, at++);
        return out;
      }
      if (c === 0x5c) {
        out += text.slice(run, at);
        const e = text[at + 1];
        at += 2;
        if (e === "u") {
          const unit = hex4();
          if (unit >= 0xd800 && unit <= 0xdbff) {
            if (text.startsWith("\\u", at)) {
              at += 2;
              const low = hex4();
              if (low < 0xdc00 || low > 0xdfff) fail("lone surrogate in \\u escape");
              out += String.fromCharCode(unit, low);
            } else {
              fail("lone surrogate in \\u escape");
            }
          } else if (unit >= 0xdc00 && unit <= 0xdfff) {
            fail("lone surrogate in \\u escape");
          } else {
            out += String.fromCharCode(unit);
          }
        } else if (e !== undefined && Object.hasOwn(ESCAPES, e)) {
          out += ESCAPES[e];
        } else {
          fail("invalid escape");
        }
        run = at;
      } else if (Number.isNaN(c)) {
        fail("unterminated string");
      } else if (c < 0x20) {
        fail("control character in string");
      } else {
        at++;
      }
    }
  };
  const value = (depth) => {
    space();
    const c = text[at];
    if (c === "{" || c === "[") {
      if (depth >= MAX_DEPTH) fail(`nested deeper than ${MAX_DEPTH} levels`);
      return c === "{" ? object(depth + 1) : array(depth + 1);
    }
    if (c === '"') return string();
    if (c === "t") return literal("true", true);
    if (c === "f") return literal("false", false);
    if (c === "n") return literal("null", null);
    if (c === "-" || (c >= "0" && c <= "9")) return number();
    return fail(c === undefined ? "unexpected end" : "unexpected character");
  };
  const object = (depth) => {
    at++;
    const obj = {};
    space();
    if (text[at] === "}") {
      at++;
      return obj;
    }
    for (;;) {
      space();
      if (text[at] !== '"') fail("expected a key");
      const key = string();
      space();
      if (text[at++] !== ":") fail("expected `:`");
      const item = value(depth);
      if (Object.hasOwn(obj, key)) {
        if (!Object.hasOwn(obj, REPEATED)) {
          Object.defineProperty(obj, REPEATED, { value: new Set() });
        }
        obj[REPEATED].add(key);
      }
      // As JSON.parse defines them: `__proto__` is a key like any other.
      Object.defineProperty(obj, key, { value: item, writable: true, enumerable: true, configurable: true });
      space();
      const next = text[at++];
      if (next === "}") return obj;
      if (next !== ",") fail("expected `,` or `}`");
    }
  };
  const array = (depth) => {
    at++;
    const items = [];
    space();
    if (text[at] === "]") {
      at++;
      return items;
    }
    for (;;) {
      items.push(value(depth));
      space();
      const next = text[at++];
      if (next === "]") return items;
      if (next !== ",") fail("expected `,` or `]`");
    }
  };
  const result = value(0);
  space();
  if (at < text.length) fail("unexpected text after the value");
  return result;
}

/** Whether `value` is a JSON object (not an array, not null). */
export function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const KINDS = {
  any: [() => true, "anything"],
  object: [isObject, "an object"],
  array: [Array.isArray, "an array"],
  string: [(v) => typeof v === "string", "a string"],
  number: [(v) => typeof v === "number", "a number"],
  boolean: [(v) => typeof v === "boolean", "a boolean"],
};

/**
 * `obj[name]`, which must be present once and of `kind` ("object", "array", "string",
 * "number", "boolean" or "any"); otherwise the record is rejected with `invalid_event`, naming
 * the field's path. With `{ required: false }` a missing field is null (a repeated one is still
 * rejected). A number beyond any double is rejected with `invalid_json`.
 */
export function field(obj, name, kind = "any", { path = "", required = true } = {}) {
  const where = path ? `${path}.${name}` : name;
  const check = KINDS[kind];
  if (check === undefined) throw new TypeError(`unknown field kind ${JSON.stringify(kind)}`);
  if (obj[REPEATED]?.has(name)) throw reject("invalid_event", `duplicate field \`${where}\``);
  if (!Object.hasOwn(obj, name)) {
    if (!required) return null;
    throw reject("invalid_event", `missing field \`${where}\``);
  }
  const value = obj[name];
  if (typeof value === "number" && !Number.isFinite(value)) {
    throw reject("invalid_json", `\`${where}\`: number out of range`);
  }
  if (!check[0](value)) throw reject("invalid_event", `\`${where}\` must be ${check[1]}`);
  return value;
}

/**
 * Rejects the record: return it from the transform, or throw it. `code` is machine-readable
 * (e.g. `invalid_event`), `message` is for people.
 */
export function reject(code, message) {
  const rejection = new Error(`${code}: ${message}`);
  rejection.name = "Reject";
  rejection.code = code;
  rejection.reason = message;
  rejection[ANSWER] = "reject";
  return rejection;
}

/** Whether `answer` is a rejection from `reject` (from any copy of this module). */
export function isReject(answer) {
  return answer?.[ANSWER] === "reject";
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Accepts the record into `partition`, an object of column to value: `accept({ section:
 * "Books", dt: "2024-03-10", hr: "15" })`. Values are passed raw (the host escapes them) and
 * converted with `String`. `body` replaces the stored data: a Uint8Array or string holding one
 * JSON value on one line, or an object or array to serialise.
 */
export function accept(partition, body = undefined) {
  const segments = [];
  for (const name of Object.keys(partition)) {
    const text = String(partition[name]);
    if (!wellFormed(text)) {
      throw new TypeError(`partition value for ${name} is not Unicode text (a lone surrogate)`);
    }
    segments.push([name, text]);
  }
  return { [ANSWER]: "accept", partition: segments, body: body === undefined ? undefined : bodyBytes(body) };
}

function bodyBytes(body) {
  if (typeof body === "object" && !(body instanceof Uint8Array) && body !== null) {
    return ENCODER.encode(JSON.stringify(body));
  }
  const raw = typeof body === "string" ? ENCODER.encode(body) : body;
  const text = new Record(raw).text();
  if (text.includes("\n") || text.includes("\r")) {
    throw new TypeError("a replacement body must be on one line");
  }
  parseJson(text);
  return raw;
}

/**
 * Milliseconds since the epoch for an RFC 3339 timestamp (`T`, `t` or a space between date and
 * time, `Z`, `z` or an offset; a leap second counts as the second's last millisecond), or null
 * for anything else, impossible dates included.
 */
export function parseRfc3339(text) {
  const match =
    typeof text === "string"
      ? /^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))$/.exec(
          text,
        )
      : null;
  if (match === null) return null;
  const [, y, mo, d, h, mi, s, fraction, , sign, offH, offM] = match;
  const [year, month, day, hour, minute] = [+y, +mo, +d, +h, +mi];
  let second = +s;
  let millis = Number((fraction ?? "0").slice(0, 3).padEnd(3, "0"));
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 60) return null;
  if (sign && (Number(offH) > 23 || Number(offM) > 59)) return null;
  if (second === 60) [second, millis] = [59, 999];
  const offset = sign ? (sign === "+" ? 1 : -1) * (Number(offH) * 60 + Number(offM)) : 0;
  const seconds = daysFromCivil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
  return (seconds - offset * 60) * 1000 + millis;
}

/** The UTC day of a time in milliseconds since the epoch: `YYYY-MM-DD`. */
export function utcDate(millis) {
  const days = Math.floor(millis / 86_400_000);
  // A batch's events mostly share a day: the interpreter in WebAssembly makes this worth it.
  if (days !== lastDate.days) {
    const [year, month, day] = civilFromDays(days);
    const pad = (n, width) => String(n).padStart(width, "0");
    lastDate.days = days;
    lastDate.text = `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}`;
  }
  return lastDate.text;
}
const lastDate = { days: NaN, text: "" };

/** The UTC hour of a time in milliseconds since the epoch: `00`-`23`. */
export function utcHour(millis) {
  const hour = Math.floor(millis / 3_600_000) % 24;
  return String(hour < 0 ? hour + 24 : hour).padStart(2, "0");
}

function daysInMonth(year, month) {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

// Howard Hinnant's civil-date algorithms: integer arithmetic, no Date objects per record.
function daysFromCivil(year, month, day) {
  year -= month <= 2 ? 1 : 0;
  const era = Math.floor(year / 400);
  const yoe = year - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

function civilFromDays(days) {
  days += 719_468;
  const era = Math.floor(days / 146_097);
  const doe = days - era * 146_097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp + (mp < 10 ? 3 : -9);
  return [yoe + era * 400 + (month <= 2 ? 1 : 0), month, day];
}

/**
 * Declares the module's transform and the partition columns every accepted record names, in
 * order. A module has exactly one. Returns `fn`.
 */
export function transform({ columns }, fn) {
  columns = [...columns];
  if (columns.length < 1 || columns.length > 8 || new Set(columns).size !== columns.length) {
    throw new TypeError("declare 1 to 8 distinct partition columns");
  }
  for (const column of columns) {
    if (typeof column !== "string" || !COLUMN.test(column)) {
      throw new TypeError(`partition column ${JSON.stringify(column)} is not [a-z0-9_]`);
    }
  }
  if (typeof fn !== "function") throw new TypeError("transform(options, fn) takes a function");
  if (globalThis[REGISTERED] !== undefined) throw new TypeError("a module declares one transform");
  globalThis[REGISTERED] = { fn, columns };
  return fn;
}

/** One debugging line for the host's log; printed when running outside WebAssembly. */
export function log(line) {
  (globalThis[LOG] ?? console.log)(String(line));
}

/**
 * Runs the declared transform on one record, as the host would: a returned or thrown rejection
 * is the answer. An accept's segments come in the declared columns' order, then any others
 * (which the host refuses).
 */
export function run(record) {
  const { fn, columns } = registered();
  let answer;
  try {
    answer = fn(record);
  } catch (error) {
    if (isReject(error)) return error;
    throw error;
  }
  if (isReject(answer)) return answer;
  if (answer?.[ANSWER] !== "accept") {
    const what = answer === null ? "null" : typeof answer === "object" ? answer.constructor?.name ?? "an object" : typeof answer;
    throw new TypeError(`the transform returned ${what}, not weir.accept(...) or weir.reject(...)`);
  }
  const rank = (name) => {
    const i = columns.indexOf(name);
    return i < 0 ? columns.length : i;
  };
  if (inOrder(answer.partition, columns)) return answer;
  const partition = [...answer.partition].sort((a, b) => rank(a[0]) - rank(b[0]));
  return { ...answer, partition };
}

/** Whether the segments name exactly the columns, in their order (the usual case). */
function inOrder(segments, columns) {
  if (segments.length !== columns.length) return false;
  for (let i = 0; i < columns.length; i++) if (segments[i][0] !== columns[i]) return false;
  return true;
}

/** The partition columns the module's transform declared. */
export function declaredColumns() {
  return [...registered().columns];
}

function registered() {
  const found = globalThis[REGISTERED];
  if (found === undefined) throw new Error("no transform declared: call weir.transform(...)");
  return found;
}
