// One way to find a free TCP port, for local process groups (the CLI's --nproc), the tests and the
// benchmarks: the system picks one for a listener on port 0, which is closed again at once.
import net from 'node:net';

/** A port that was free on `host` a moment ago; another process may still take it before it is used. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
