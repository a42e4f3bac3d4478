// A real AT Protocol network on loopback, for Forger's Bluesky tests: the PLC directory, a PDS,
// the Bluesky AppView (with bsync) and Ozone, as the AT Protocol's own tests start them
// (@atproto/dev-env's TestNetwork). Not an emulator.
//
// Needs: Node >= 22, DB_POSTGRES_URL (a database of its own: its schemas outlive it),
// DB_POSTGRES_SCHEMA, REDIS_HOST (must be set; nothing connects to it) and a TMPDIR of its own
// (it keeps blobs and data there). Prints one line of JSON with the services' URLs once they are
// ready, then stays up until SIGTERM or SIGINT (or its standard input closes).
import net from 'node:net'

// Every server it starts listens on all interfaces: bind them to loopback instead.
const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  const [first] = args
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    if (typeof args[1] !== 'string') args.splice(1, 0, '127.0.0.1')
  } else if (first && typeof first === 'object' && !first.path && !first.host && !first.fd && !first._handle) {
    args[0] = { ...first, host: '127.0.0.1' }
  } else if (args.length === 0 || typeof first === 'function') {
    args.unshift(0, '127.0.0.1')
  }
  return listen.apply(this, args)
}

const { TestNetwork } = await import('@atproto/dev-env')

const started = Date.now()
const network = await TestNetwork.create({
  dbPostgresSchema: process.env.DB_POSTGRES_SCHEMA || 'forger',
  // As bsky.social does: every answer says its window (RateLimit-* headers), a spent one is a 429.
  pds: { rateLimitsEnabled: true },
})
process.stdout.write(JSON.stringify({
  plc: network.plc.url,
  pds: network.pds.url,
  appview: network.bsky.url,
  ready_s: (Date.now() - started) / 1000,
}) + '\n')

let closing = false
async function close() {
  if (closing) return
  closing = true
  try {
    await network.close()
  } catch (err) {
    console.error('closing the network:', err)
  }
  process.exit(0)
}
process.on('SIGTERM', close)
process.on('SIGINT', close)
process.stdin.on('end', close)
process.stdin.resume()
