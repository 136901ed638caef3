// Number formats of the Guild file's fields and series: the Numeral.js patterns the
// original Guild used (`0.00%`, `%`, `0.0 b`, `0,0`, `00:00:00`, ...), plus its own
// `0.0e` and a trailing ` ms`. The same rules as the daemon's
// guildd/src/project/view/format.rs (read its module doc), and both are tested against
// tests/fixtures/formats.json:
//
// - number: decimals are the `0`s after `.`; `,` groups thousands; no `.` rounds to an
//   integer; halves round up, as JavaScript's `Math.round`.
// - `%`: the value times 100, then `%` (`" %"` when the pattern has the space); `%` alone
//   is a whole percent.
// - bytes (`b`, after `0` or a space): units of 1000 (`B KB MB ...`), or of 1024 with
//   `ib` (`B KiB MiB ...`).
// - time (any `:`): seconds as `H:MM:SS`, hours not padded.
// - `e+`/`e-`, and the original's `0.0e`: mantissa in the pattern's decimals, then `e`
//   and the signed exponent (an exact tie rounds to even, as the daemon's formatting).
// - `a`: thousands as `k`, `m`, `b`, `t`. `$`: a dollar sign where the pattern has it;
//   `o`: ordinal suffix.
//
// NaN and infinities print as `NaN`, `inf`, `-inf`; an empty pattern prints the value in
// its shortest form.

/** `value` in the Numeral pattern `pattern`. */
export function numeral(value: number, pattern: string): string {
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "inf" : "-inf";
  if (pattern === "") return shortest(value);
  if (pattern.endsWith(" ms")) return `${numeral(value, pattern.slice(0, -3))} ms`;
  if (isGuildExponent(pattern)) {
    const dot = pattern.indexOf(".");
    const decimals = dot < 0 ? 0 : [...pattern.slice(dot + 1)].filter((c) => c === "0").length;
    return exponential(value, decimals);
  }
  const chars = [...pattern];
  const at = bytesMarker(chars);
  if (at !== null) return bytes(value, chars, at);
  if (pattern.includes("$")) return currency(value, pattern);
  if (pattern.includes("e+") || pattern.includes("e-")) {
    return exponential(value, decimalsOf(pattern.split("e")[0]));
  }
  if (pattern.includes("o")) return ordinal(value, pattern);
  if (pattern.includes("%")) return percent(value, pattern);
  if (pattern.includes(":")) return time(value);
  return number(value, pattern);
}

/** The shortest text that reads back as the value (`0.1`, `12`, `1e-7`). */
export function shortest(value: number): string {
  if (Number.isInteger(value) && Math.abs(value) < 1e16) return String(value === 0 ? 0 : value);
  // The shortest digits JavaScript finds (the same the daemon finds), in positional and
  // exponent form; the exponent form only when it is shorter.
  const [mant, expText] = value.toExponential().split("e");
  const exp = Number(expText);
  const neg = mant.startsWith("-");
  const digits = mant.replace("-", "").replace(".", "");
  let plain: string;
  if (exp >= digits.length - 1) plain = digits + "0".repeat(exp - digits.length + 1);
  else if (exp >= 0) plain = `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  else plain = `0.${"0".repeat(-exp - 1)}${digits}`;
  if (neg) plain = `-${plain}`;
  const expForm = `${mant}e${exp}`;
  return expForm.length < plain.length ? expForm : plain;
}

/**
 * The pattern with `extra` more decimals (`0.0%` → `0.000%`, `%` → `0.0%`, `0,0` →
 * `0,0.0`): for chart ticks closer together than the pattern can tell apart. Time
 * patterns and the empty pattern are returned as they are.
 */
export function moreDecimals(pattern: string, extra: number): string {
  if (extra <= 0 || pattern === "" || pattern.includes(":")) return pattern;
  const zeros = "0".repeat(extra);
  const m = /0[0,]*(\.0*)?/.exec(pattern);
  if (!m) return `0.${zeros}${pattern}`;
  const head = m[1] === undefined ? `${m[0]}.${zeros}` : `${m[0]}${zeros}`;
  return pattern.slice(0, m.index) + head + pattern.slice(m.index + m[0].length);
}

/** `0.0e`, `0.00e`, `0e`: the original's own exponent form (not Numeral's `e+0`). */
function isGuildExponent(pattern: string): boolean {
  return pattern.endsWith("e") && [...pattern.replace(/e+$/, "")].every((c) => c === "0" || c === ".");
}

/** The `0`s right after the first `.`. */
function decimalsOf(pattern: string): number {
  const dot = pattern.indexOf(".");
  if (dot < 0) return 0;
  let n = 0;
  while (pattern[dot + 1 + n] === "0") n++;
  return n;
}

/** Where the bytes unit starts (`b` or `ib`), as a character index, when the pattern is a
 * bytes pattern. */
function bytesMarker(chars: string[]): number | null {
  const boundary = (c: string | undefined) => c === "0" || c === " ";
  for (let i = 0; i < chars.length; i++) {
    if (chars[i] !== "b") continue;
    if (i >= 1 && boundary(chars[i - 1])) return i;
    if (i >= 2 && chars[i - 1] === "i" && boundary(chars[i - 2])) return i - 1;
  }
  return null;
}

/** JavaScript's `Math.round` as the daemon computes it: halves go up. */
function jsRound(value: number): number {
  return Math.floor(value + 0.5);
}

/** Every digit of a value that is a whole number of `decimals` places (toFixed, which
 * switches to exponent form from 1e21 on). */
function fixed(abs: number, decimals: number): string {
  if (abs < 1e21) return abs.toFixed(Math.min(decimals, 100));
  const int = BigInt(abs).toString();
  return decimals > 0 ? `${int}.${"0".repeat(decimals)}` : int;
}

/** The number part of a pattern: decimals, thousands, and JavaScript's rounding. */
function number(value: number, pattern: string): string {
  if (pattern.includes("a")) return abbreviated(value, pattern);
  const decimals = decimalsOf(pattern);
  const scale = 10 ** decimals;
  const rounded = jsRound(value * scale) / scale;
  const text = fixed(Math.abs(rounded), decimals);
  const dot = text.indexOf(".");
  const int = dot < 0 ? text : text.slice(0, dot);
  let out = "";
  if (rounded < 0) out += "-";
  else if (pattern.startsWith("+") && rounded > 0) out += "+";
  out += pattern.includes(",") ? group(int) : int;
  if (dot >= 0) out += text.slice(dot);
  return out;
}

function group(int: string): string {
  let out = "";
  for (let i = 0; i < int.length; i++) {
    if (i > 0 && (int.length - i) % 3 === 0) out += ",";
    out += int[i];
  }
  return out;
}

function abbreviated(value: number, pattern: string): string {
  const spaced = pattern.includes(" a");
  const rest = pattern.replaceAll(" a", "").replaceAll("a", "");
  const abs = Math.abs(value);
  const [divisor, unit] = abs >= 1e12 ? [1e12, "t"] : abs >= 1e9 ? [1e9, "b"] : abs >= 1e6 ? [1e6, "m"] : abs >= 1e3 ? [1e3, "k"] : [1, ""];
  const head = number(value / divisor, rest);
  if (unit === "") return head;
  return spaced ? `${head} ${unit}` : `${head}${unit}`;
}

function percent(value: number, pattern: string): string {
  const spaced = pattern.includes(" %");
  const rest = pattern.replaceAll(" %", "").replaceAll("%", "");
  const head = number(value * 100, rest);
  return spaced ? `${head} %` : `${head}%`;
}

const DECIMAL_UNITS = ["B", "KB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

function bytes(value: number, chars: string[], at: number): string {
  const unitPart = chars.slice(at).join("");
  const binary = unitPart.startsWith("ib");
  const before = chars.slice(0, at).join("");
  const spaced = before.endsWith(" ");
  const after = unitPart.replace(/^i+/, "").replace(/^b+/, "");
  const rest = before.trimEnd() + after;
  const base = binary ? 1024 : 1000;
  const units = binary ? BINARY_UNITS : DECIMAL_UNITS;
  let power = 0;
  const abs = Math.abs(value);
  while (power + 1 < units.length && abs >= base ** (power + 1)) power++;
  const head = number(value / base ** power, rest);
  return spaced ? `${head} ${units[power]}` : `${head}${units[power]}`;
}

/** A whole number as the daemon's `as u64` makes it (saturating), for what only the
 * digits of a huge value decide. */
function wholeU64(value: number): bigint {
  return value >= 18446744073709551615 ? 18446744073709551615n : BigInt(value);
}

function time(value: number): string {
  const total = wholeU64(jsRound(Math.abs(value)));
  const h = total / 3600n;
  const m = (total % 3600n) / 60n;
  const s = total % 60n;
  const sign = value < 0 && total > 0n ? "-" : "";
  return `${sign}${h}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
}

/**
 * `decimals` digits after the point, then `e` and the signed exponent (`1.2e-3`,
 * `1.2e+3`). toExponential rounds an exact tie up; the daemon's formatting rounds it to
 * even, so a tie (the exact value ends in that 5) takes the even neighbour.
 */
function exponential(value: number, decimals: number): string {
  const d = Math.min(decimals, 100);
  const sign = value < 0 || Object.is(value, -0) ? "-" : "";
  const abs = Math.abs(value);
  let text = abs.toExponential(d);
  if (d < 99) {
    // Every digit of the value, when it has no more than 101 (a tie has d + 2).
    const exact = abs.toExponential(100);
    const [digits] = exact.split("e");
    const plain = digits.replace(".", "");
    const tie = plain[d + 1] === "5" && /^0*$/.test(plain.slice(d + 2));
    if (tie && Number(plain[d]) % 2 === 0) {
      const exp = exact.split("e")[1];
      text = `${d > 0 ? `${plain[0]}.${plain.slice(1, d + 1)}` : plain[0]}e${exp}`;
    }
  }
  return sign + text;
}

function currency(value: number, pattern: string): string {
  const before = pattern.trimStart().startsWith("$");
  const head = number(value, pattern.replaceAll("$", "").trim());
  return before ? `$${head}` : `${head}$`;
}

function ordinal(value: number, pattern: string): string {
  const head = number(value, pattern.replaceAll("o", "").trim());
  const n = wholeU64(jsRound(Math.abs(value)));
  const tens = n % 100n;
  const suffix = tens >= 11n && tens <= 13n ? "th" : n % 10n === 1n ? "st" : n % 10n === 2n ? "nd" : n % 10n === 3n ? "rd" : "th";
  return head + suffix;
}
