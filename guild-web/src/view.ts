// A run's view from its Guild file (GetRunView), as the run page draws it: field cards
// with the Material palette's colours and the original's icons, and rows of charts whose
// lines are the series keys each chart's pattern matches whole.

import type { View, ViewSeries } from "./gen/guild/v1/guild_pb";

/** The Material Design palette (2014), by hue and shade, that Guild files name colours
 * from (`green-700`, `teal-400`, `grey`). */
const SHADES = ["50", "100", "200", "300", "400", "500", "600", "700", "800", "900", "a100", "a200", "a400", "a700"];
const HUES: Record<string, string> = {
  red: "FFEBEE FFCDD2 EF9A9A E57373 EF5350 F44336 E53935 D32F2F C62828 B71C1C FF8A80 FF5252 FF1744 D50000",
  pink: "FCE4EC F8BBD0 F48FB1 F06292 EC407A E91E63 D81B60 C2185B AD1457 880E4F FF80AB FF4081 F50057 C51162",
  purple: "F3E5F5 E1BEE7 CE93D8 BA68C8 AB47BC 9C27B0 8E24AA 7B1FA2 6A1B9A 4A148C EA80FC E040FB D500F9 AA00FF",
  "deep-purple": "EDE7F6 D1C4E9 B39DDB 9575CD 7E57C2 673AB7 5E35B1 512DA8 4527A0 311B92 B388FF 7C4DFF 651FFF 6200EA",
  indigo: "E8EAF6 C5CAE9 9FA8DA 7986CB 5C6BC0 3F51B5 3949AB 303F9F 283593 1A237E 8C9EFF 536DFE 3D5AFE 304FFE",
  blue: "E3F2FD BBDEFB 90CAF9 64B5F6 42A5F5 2196F3 1E88E5 1976D2 1565C0 0D47A1 82B1FF 448AFF 2979FF 2962FF",
  "light-blue": "E1F5FE B3E5FC 81D4FA 4FC3F7 29B6F6 03A9F4 039BE5 0288D1 0277BD 01579B 80D8FF 40C4FF 00B0FF 0091EA",
  cyan: "E0F7FA B2EBF2 80DEEA 4DD0E1 26C6DA 00BCD4 00ACC1 0097A7 00838F 006064 84FFFF 18FFFF 00E5FF 00B8D4",
  teal: "E0F2F1 B2DFDB 80CBC4 4DB6AC 26A69A 009688 00897B 00796B 00695C 004D40 A7FFEB 64FFDA 1DE9B6 00BFA5",
  green: "E8F5E9 C8E6C9 A5D6A7 81C784 66BB6A 4CAF50 43A047 388E3C 2E7D32 1B5E20 B9F6CA 69F0AE 00E676 00C853",
  "light-green": "F1F8E9 DCEDC8 C5E1A5 AED581 9CCC65 8BC34A 7CB342 689F38 558B2F 33691E CCFF90 B2FF59 76FF03 64DD17",
  lime: "F9FBE7 F0F4C3 E6EE9C DCE775 D4E157 CDDC39 C0CA33 AFB42B 9E9D24 827717 F4FF81 EEFF41 C6FF00 AEEA00",
  yellow: "FFFDE7 FFF9C4 FFF59D FFF176 FFEE58 FFEB3B FDD835 FBC02D F9A825 F57F17 FFFF8D FFFF00 FFEA00 FFD600",
  amber: "FFF8E1 FFECB3 FFE082 FFD54F FFCA28 FFC107 FFB300 FFA000 FF8F00 FF6F00 FFE57F FFD740 FFC400 FFAB00",
  orange: "FFF3E0 FFE0B2 FFCC80 FFB74D FFA726 FF9800 FB8C00 F57C00 EF6C00 E65100 FFD180 FFAB40 FF9100 FF6D00",
  "deep-orange": "FBE9E7 FFCCBC FFAB91 FF8A65 FF7043 FF5722 F4511E E64A19 D84315 BF360C FF9E80 FF6E40 FF3D00 DD2C00",
  brown: "EFEBE9 D7CCC8 BCAAA4 A1887F 8D6E63 795548 6D4C41 5D4037 4E342E 3E2723",
  grey: "FAFAFA F5F5F5 EEEEEE E0E0E0 BDBDBD 9E9E9E 757575 616161 424242 212121",
  "blue-grey": "ECEFF1 CFD8DC B0BEC5 90A4AE 78909C 607D8B 546E7A 455A64 37474F 263238",
};
const NAMED: Record<string, string> = { black: "#000000", white: "#FFFFFF" };

/** A card's colour when the file names none the palette has. */
export const NEUTRAL = "#757575";

/**
 * The hex colour of a Material palette name: `green-700`, `teal-400`, `light-blue-a200`,
 * `grey` (shade 500), `gray-300`; null for a name the palette does not have.
 */
export function materialColor(name: string): string | null {
  const n = name.trim().toLowerCase().replaceAll("gray", "grey").replace(/^paper-/, "");
  if (NAMED[n]) return NAMED[n];
  const m = /^([a-z-]+?)(?:-(a?\d+))?$/.exec(n);
  if (!m) return null;
  const hue = HUES[m[1]];
  if (!hue) return null;
  const shade = SHADES.indexOf(m[2] ?? "500");
  const hex = shade < 0 ? undefined : hue.split(" ")[shade];
  return hex ? `#${hex}` : null;
}

/** A card's background (the named colour, else the neutral one) and the text colour that
 * reads on it. */
export function cardColors(name: string): { background: string; color: string } {
  const background = materialColor(name) ?? NEUTRAL;
  return { background, color: luminance(background) > 0.5 ? "rgba(0,0,0,0.87)" : "#FFFFFF" };
}

function luminance(hex: string): number {
  const v = parseInt(hex.slice(1), 16);
  const [r, g, b] = [(v >> 16) & 255, (v >> 8) & 255, v & 255];
  return (0.299 * r + 0.587 * g + 0.114 * b) / 255;
}

/** The glyph an icon name shows: the original's aliases (`accuracy` a bullseye, `steps`
 * repeat arrows, `time` a clock, `loss` shuffle arrows), else a generic chart glyph. */
export type Glyph = "bullseye" | "repeat" | "clock" | "shuffle" | "chart";

export function iconGlyph(name: string): Glyph {
  switch (name.trim().toLowerCase()) {
    case "accuracy":
      return "bullseye";
    case "steps":
      return "repeat";
    case "time":
      return "clock";
    case "loss":
      return "shuffle";
    default:
      return "chart";
  }
}

/** A regular expression over whole series keys, as the daemon reads a series pattern:
 * `^(?:PATTERN)$` (a leading `(?i)` makes it ignore case); the reason when JavaScript
 * cannot read it; null for the empty pattern, which matches nothing. */
export function keyRegex(pattern: string): RegExp | { error: string } | null {
  if (pattern === "") return null;
  let body = pattern;
  let flags = "";
  if (body.startsWith("(?i)")) {
    body = body.slice(4);
    flags = "i";
  }
  try {
    return new RegExp(`^(?:${body})$`, flags + "u");
  } catch {
    try {
      return new RegExp(`^(?:${body})$`, flags);
    } catch (err) {
      return { error: err instanceof Error ? err.message : String(err) };
    }
  }
}

export interface ViewChart {
  /** The row it is in (`series`, `series-a`, ...). */
  row: string;
  series: ViewSeries;
  /** The keys the pattern matches, in natural order: one line each. */
  keys: string[];
  /** Why the pattern cannot be used, if so. */
  error?: string;
  /** Every matched key is a stats key (sys/, op/): drawn against time. */
  stats: boolean;
}

export interface ViewRowCharts {
  name: string;
  charts: ViewChart[];
}

const collator = new Intl.Collator(undefined, { numeric: true });

/** The view's rows of charts over a run's series keys. */
export function viewCharts(view: View, keys: Iterable<string>): ViewRowCharts[] {
  const sorted = [...keys].sort(collator.compare);
  const cache = new Map<string, ReturnType<typeof keyRegex>>();
  return view.rows.map((row) => ({
    name: row.name,
    charts: row.series.map((series) => {
      let re = cache.get(series.pattern);
      if (re === undefined) {
        re = keyRegex(series.pattern);
        cache.set(series.pattern, re);
      }
      const matched = re instanceof RegExp ? sorted.filter((k) => re.test(k)) : [];
      const chart: ViewChart = {
        row: row.name,
        series,
        keys: matched,
        stats: matched.length > 0 && matched.every((k) => k.startsWith("sys/") || k.startsWith("op/")),
      };
      if (re !== null && !(re instanceof RegExp)) chart.error = `pattern ${series.pattern}: ${re.error}`;
      return chart;
    }),
  }));
}
