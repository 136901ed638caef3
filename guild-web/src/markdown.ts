// Markdown for the Text panel, sanitised by construction: text is parsed into a small tree
// of the elements below and built with createElement and textContent only, never HTML
// strings, so raw HTML in a run's text (`<script>`, `<img onerror>`) shows as the text it
// is. Links keep http(s) and mailto addresses only (rel=noopener, new tab); images are
// never loaded (no remote images): they show as their alt text in brackets.
//
// Blocks: ATX headings, fenced code, tables (TensorBoard's text plugin writes them),
// lists (-, *, + and 1.), block quotes, rules, paragraphs. Inline: code spans, **bold**,
// *italic*, [links](url), ![images](url).

export type Inline =
  | { t: "text"; text: string }
  | { t: "code"; text: string }
  | { t: "strong"; children: Inline[] }
  | { t: "em"; children: Inline[] }
  | { t: "link"; href: string; children: Inline[] }
  | { t: "br" };

export type Block =
  | { t: "h"; level: number; children: Inline[] }
  | { t: "p"; children: Inline[] }
  | { t: "pre"; text: string }
  | { t: "quote"; children: Block[] }
  | { t: "ul" | "ol"; items: Inline[][] }
  | { t: "table"; head: Inline[][]; rows: Inline[][][] }
  | { t: "hr" };

/** At most this many characters are rendered (a huge text stays a responsive page). */
export const MAX_CHARS = 200_000;

export function parseMarkdown(source: string): Block[] {
  const lines = source.slice(0, MAX_CHARS).replace(/\r\n?/g, "\n").split("\n");
  return blocks(lines);
}

function blocks(lines: string[]): Block[] {
  const out: Block[] = [];
  let i = 0;
  const isTableSep = (l: string | undefined) => l !== undefined && /^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/.test(l);
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) {
      i++;
      continue;
    }
    let m: RegExpMatchArray | null;
    if ((m = line.match(/^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/))) {
      out.push({ t: "h", level: m[1].length, children: inline(m[2]) });
      i++;
    } else if ((m = line.match(/^\s{0,3}(```|~~~)/))) {
      const fence = m[1];
      const body: string[] = [];
      i++;
      while (i < lines.length && !lines[i].trimStart().startsWith(fence)) body.push(lines[i++]);
      i++;
      out.push({ t: "pre", text: body.join("\n") });
    } else if (/^\s{0,3}([-*_])(\s*\1){2,}\s*$/.test(line)) {
      out.push({ t: "hr" });
      i++;
    } else if (line.includes("|") && isTableSep(lines[i + 1])) {
      const head = cells(line);
      i += 2;
      const rows: Inline[][][] = [];
      while (i < lines.length && lines[i].includes("|") && lines[i].trim()) rows.push(cells(lines[i++]));
      out.push({ t: "table", head, rows });
    } else if (/^\s{0,3}>/.test(line)) {
      const body: string[] = [];
      while (i < lines.length && /^\s{0,3}>/.test(lines[i])) body.push(lines[i++].replace(/^\s{0,3}>\s?/, ""));
      out.push({ t: "quote", children: blocks(body) });
    } else if (/^\s{0,3}([-*+]|\d{1,9}[.)])\s+/.test(line)) {
      const ordered = /^\s{0,3}\d/.test(line);
      const items: Inline[][] = [];
      const marker = ordered ? /^\s{0,3}\d{1,9}[.)]\s+/ : /^\s{0,3}[-*+]\s+/;
      while (i < lines.length && marker.test(lines[i])) {
        let text = lines[i++].replace(marker, "");
        // Continuation lines (indented, not a new item) join the item.
        while (i < lines.length && /^\s{2,}\S/.test(lines[i]) && !marker.test(lines[i])) text += " " + lines[i++].trim();
        items.push(inline(text));
      }
      out.push({ t: ordered ? "ol" : "ul", items });
    } else {
      const body: string[] = [];
      while (
        i < lines.length &&
        lines[i].trim() &&
        !/^\s{0,3}(#{1,6}\s|```|~~~|>|[-*+]\s|\d{1,9}[.)]\s)/.test(lines[i]) &&
        !(lines[i].includes("|") && isTableSep(lines[i + 1]))
      ) {
        body.push(lines[i++]);
      }
      if (!body.length) body.push(lines[i++]);
      const children: Inline[] = [];
      body.forEach((l, k) => {
        if (k > 0) children.push(/ {2,}$|\\$/.test(body[k - 1]) ? { t: "br" } : { t: "text", text: " " });
        children.push(...inline(l.replace(/( {2,}|\\)$/, "").trim()));
      });
      out.push({ t: "p", children });
    }
  }
  return out;
}

function cells(line: string): Inline[][] {
  let s = line.trim();
  if (s.startsWith("|")) s = s.slice(1);
  if (s.endsWith("|") && !s.endsWith("\\|")) s = s.slice(0, -1);
  const parts: string[] = [];
  let cur = "";
  for (let k = 0; k < s.length; k++) {
    if (s[k] === "\\" && s[k + 1] === "|") {
      cur += "|";
      k++;
    } else if (s[k] === "|") {
      parts.push(cur);
      cur = "";
    } else cur += s[k];
  }
  parts.push(cur);
  return parts.map((p) => inline(p.trim()));
}

/** Only these link targets are kept; anything else (javascript:, data:) is plain text. */
export function safeHref(url: string): string | null {
  const u = url.trim();
  return /^(https?:\/\/|mailto:)[^\s]*$/i.test(u) ? u : null;
}

export function inline(text: string): Inline[] {
  const out: Inline[] = [];
  let buf = "";
  const flush = () => {
    if (buf) out.push({ t: "text", text: buf });
    buf = "";
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    const rest = text.slice(i);
    let m: RegExpMatchArray | null;
    if (c === "\\" && i + 1 < text.length && /[\\`*_[\]()#+\-.!|<>]/.test(text[i + 1])) {
      buf += text[i + 1];
      i += 2;
    } else if (c === "`" && (m = rest.match(/^(`+)([\s\S]*?[^`])\1(?!`)/))) {
      flush();
      out.push({ t: "code", text: m[2].trim() });
      i += m[0].length;
    } else if ((m = rest.match(/^!\[([^\]]*)\]\(((?:[^()\s]|\([^()\s]*\))*)(?:\s+"[^"]*")?\)/))) {
      // No remote images: the alt text stands in.
      buf += `[image: ${m[1] || m[2]}]`;
      i += m[0].length;
    } else if ((m = rest.match(/^\[([^\]]+)\]\(((?:[^()\s]|\([^()\s]*\))*)(?:\s+"[^"]*")?\)/))) {
      const href = safeHref(m[2]);
      if (href) {
        flush();
        out.push({ t: "link", href, children: inline(m[1]) });
      } else buf += m[1];
      i += m[0].length;
    } else if ((m = rest.match(/^(\*\*|__)(?=\S)([\s\S]*?\S)\1/))) {
      flush();
      out.push({ t: "strong", children: inline(m[2]) });
      i += m[0].length;
    } else if ((m = rest.match(/^(\*|_)(?=\S)([\s\S]*?\S)\1/)) && !(c === "_" && /\w/.test(text[i - 1] ?? ""))) {
      flush();
      out.push({ t: "em", children: inline(m[2]) });
      i += m[0].length;
    } else {
      buf += c;
      i++;
    }
  }
  flush();
  return out;
}

/** The blocks as DOM nodes (no HTML strings anywhere). */
export function renderMarkdown(source: string, doc: Document = document): DocumentFragment {
  const frag = doc.createDocumentFragment();
  for (const b of parseMarkdown(source)) frag.append(blockNode(b, doc));
  return frag;
}

function el(doc: Document, tag: string, children: Inline[] = []): HTMLElement {
  const e = doc.createElement(tag);
  for (const c of children) e.append(inlineNode(c, doc));
  return e;
}

function blockNode(b: Block, doc: Document): Node {
  switch (b.t) {
    case "h":
      return el(doc, `h${Math.min(6, Math.max(1, b.level))}`, b.children);
    case "p":
      return el(doc, "p", b.children);
    case "pre": {
      const pre = doc.createElement("pre");
      const code = doc.createElement("code");
      code.textContent = b.text;
      pre.append(code);
      return pre;
    }
    case "quote": {
      const q = doc.createElement("blockquote");
      for (const c of b.children) q.append(blockNode(c, doc));
      return q;
    }
    case "ul":
    case "ol": {
      const list = doc.createElement(b.t);
      for (const item of b.items) list.append(el(doc, "li", item));
      return list;
    }
    case "table": {
      const table = doc.createElement("table");
      const thead = doc.createElement("thead");
      const tr = doc.createElement("tr");
      for (const h of b.head) tr.append(el(doc, "th", h));
      thead.append(tr);
      const tbody = doc.createElement("tbody");
      for (const row of b.rows) {
        const r = doc.createElement("tr");
        for (const cell of row) r.append(el(doc, "td", cell));
        tbody.append(r);
      }
      table.append(thead, tbody);
      return table;
    }
    case "hr":
      return doc.createElement("hr");
  }
}

function inlineNode(n: Inline, doc: Document): Node {
  switch (n.t) {
    case "text":
      return doc.createTextNode(n.text);
    case "code": {
      const c = doc.createElement("code");
      c.textContent = n.text;
      return c;
    }
    case "strong":
      return el(doc, "strong", n.children);
    case "em":
      return el(doc, "em", n.children);
    case "link": {
      const a = el(doc, "a", n.children) as HTMLAnchorElement;
      a.href = n.href;
      a.rel = "noopener noreferrer";
      a.target = "_blank";
      return a;
    }
    case "br":
      return doc.createElement("br");
  }
}
