// prom.mjs: the Prometheus text exposition format (0.0.4), parsed strictly
// enough that a malformed line fails the test that reads it.

// Parses text into { types: Map(name -> type), help: Map, samples: [{ name,
// labels, value }] }. Throws on a line that is not a comment, blank or a
// sample, on a sample whose family has no TYPE before it, and on a
// repeated series.
export function parseMetrics(text) {
  const types = new Map();
  const help = new Map();
  const samples = [];
  const seen = new Set();
  if (!text.endsWith('\n')) throw new Error('exposition does not end with a newline');
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = line.match(/^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/);
    if (m) {
      if (m[1] === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(m[3])) throw new Error(`bad TYPE: ${line}`);
        types.set(m[2], m[3]);
      } else {
        help.set(m[2], m[3]);
      }
      continue;
    }
    if (line.startsWith('#')) continue;
    m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/);
    if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/gy;
      let lm;
      let end = 0;
      while ((lm = re.exec(m[3]))) {
        labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
        end = re.lastIndex;
        if (end === m[3].length) break;
      }
      if (end !== m[3].length) throw new Error(`bad labels: ${line}`);
    }
    const value = m[4] === '+Inf' ? Infinity : Number(m[4]);
    if (Number.isNaN(value)) throw new Error(`bad value: ${line}`);
    const family = m[1].replace(/_(bucket|sum|count)$/, '');
    if (!types.has(m[1]) && !(types.get(family) === 'histogram')) throw new Error(`no TYPE for ${m[1]}`);
    const key = `${m[1]}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) throw new Error(`repeated series: ${line}`);
    seen.add(key);
    samples.push({ name: m[1], labels, value });
  }
  return { types, help, samples };
}

// The value of the series name{labels} (labels: a subset to match), or 0
// when absent (a counter not yet written reads as zero).
export function value(parsed, name, labels = {}) {
  const s = parsed.samples.filter((x) => x.name === name &&
    Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  if (s.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${s.length} series`);
  return s.length ? s[0].value : 0;
}

// Every series of a family name.
export function series(parsed, name) {
  return parsed.samples.filter((x) => x.name === name);
}

// GET /metrics from a harness Server, parsed.
export async function scrape(server, headers = {}) {
  const res = await fetch(`http://127.0.0.1:${server.port}/metrics`, { headers });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${await res.text()}`);
  const type = res.headers.get('content-type');
  if (!/^text\/plain; version=0\.0\.4/.test(type)) throw new Error(`/metrics content-type ${type}`);
  return parseMetrics(await res.text());
}
