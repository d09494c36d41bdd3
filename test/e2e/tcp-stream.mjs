// TCP stream through a tunnel: `server HOST PORT` prints "<bytes> <sha256>" when the peer closes;
// `client HOST PORT BYTES` sends BYTES of seeded data and prints the same line for what it sent.
import { createHash } from 'node:crypto';
import { createConnection, createServer } from 'node:net';

const [mode, host, portText, bytesText] = process.argv.slice(2);
const port = Number(portText);
if (mode === 'server') {
  const srv = createServer((s) => {
    const h = createHash('sha256');
    let n = 0;
    s.on('data', (d) => { h.update(d); n += d.length; });
    s.on('end', () => { console.log(`${n} ${h.digest('hex')}`); s.end(); srv.close(); });
  });
  srv.listen(port, host, () => console.log('listening'));
} else if (mode === 'client') {
  const total = Number(bytesText);
  const h = createHash('sha256');
  const s = createConnection({ host, port }, () => {
    let sent = 0;
    let block = 0;
    const pump = () => {
      while (sent < total) {
        const len = Math.min(16384, total - sent);
        const chunk = Buffer.alloc(len, block++ & 0xff);
        h.update(chunk);
        sent += len;
        if (!s.write(chunk)) return void s.once('drain', pump);
      }
      s.end();
      console.log(`${total} ${h.digest('hex')}`);
    };
    pump();
  });
  s.setTimeout(60_000, () => { console.error('timeout'); process.exit(1); });
  s.on('error', (e) => { console.error(e.message); process.exit(1); });
} else {
  console.error('usage: tcp-stream.mjs server HOST PORT | client HOST PORT BYTES');
  process.exit(2);
}
