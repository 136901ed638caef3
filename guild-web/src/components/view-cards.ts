// A run's view cards: one per field of its Guild file's view, in order: the value in
// the field's format (`--` while the run has none), its label, the Material colour it
// names and its icon. The run page renders them from GetRunView.

import { html, svg, type TemplateResult } from "lit";
import type { FieldValue, ViewField } from "../gen/guild/v1/guild_pb";
import { cardColors, iconGlyph, type Glyph } from "../view";

/** Small glyphs (24x24, currentColor) for the original's icon aliases. */
function glyph(g: Glyph): TemplateResult {
  switch (g) {
    case "bullseye":
      return svg`<circle cx="12" cy="12" r="9" fill="none" stroke="currentColor" stroke-width="2"/>
        <circle cx="12" cy="12" r="5.5" fill="none" stroke="currentColor" stroke-width="2"/>
        <circle cx="12" cy="12" r="2" fill="currentColor"/>`;
    case "repeat":
      return svg`<path fill="currentColor" d="M7 7h10v3l4-4-4-4v3H5v6h2V7zm10 10H7v-3l-4 4 4 4v-3h12v-6h-2v4z"/>`;
    case "clock":
      return svg`<path fill="currentColor" d="M11.99 2C6.47 2 2 6.48 2 12s4.47 10 9.99 10C17.52 22 22 17.52 22 12S17.52 2 11.99 2zM12 20c-4.42 0-8-3.58-8-8s3.58-8 8-8 8 3.58 8 8-3.58 8-8 8zm.5-13H11v6l5.25 3.15.75-1.23-4.5-2.67z"/>`;
    case "shuffle":
      return svg`<path fill="currentColor" d="M10.59 9.17L5.41 4 4 5.41l5.17 5.17 1.42-1.41zM14.5 4l2.04 2.04L4 18.59 5.41 20 17.96 7.46 20 9.5V4h-5.5zm.33 9.41l-1.41 1.41 3.13 3.13L14.5 20H20v-5.5l-2.04 2.04-3.13-3.13z"/>`;
    default:
      return svg`<path fill="currentColor" d="M3.5 18.49l6-6.01 4 4L22 6.92l-1.41-1.41-7.09 7.97-4-4L2 16.99z"/>`;
  }
}

/** The cards of a view's fields with their values (matched by position, else name). */
export function fieldCards(fields: ViewField[], values: FieldValue[]): TemplateResult {
  return html`<div class="field-cards" id="view-cards">
    ${fields.map((f, i) => {
      const v = values[i]?.name === f.name ? values[i] : values.find((x) => x.name === f.name);
      const colors = cardColors(f.color);
      const g = iconGlyph(f.icon);
      return html`<div class="field-card" data-field=${f.name} data-icon=${f.icon} data-glyph=${g} data-color=${f.color}
          style="background:${colors.background};color:${colors.color}" title=${v?.key ? `${f.label}: ${v.key}` : f.label}>
        <svg class="field-icon" viewBox="0 0 24 24" width="28" height="28" aria-hidden="true">${glyph(g)}</svg>
        <div class="field-body">
          <div class="field-value num">${v?.present ? v.text : "--"}</div>
          <div class="field-label">${f.label}</div>
        </div>
      </div>`;
    })}
  </div>`;
}
