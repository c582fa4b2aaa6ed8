#!/usr/bin/env bash
# Python asyncio: an echo server and a client doing 50,000 round trips of
# 100 B on one connection, first both under pdrun, then on kernel TCP.
# Needs: python3; npm run build.
source "$(dirname "$0")/common.sh"
port=${PORT:-8291}

server='
import asyncio, sys
async def echo(r, w):
    while data := await r.read(65536):
        w.write(data); await w.drain()
async def main():
    async with await asyncio.start_server(echo, "127.0.0.1", int(sys.argv[1])) as s: await s.serve_forever()
asyncio.run(main())'
client='
import asyncio, sys, time
async def main():
    r, w = await asyncio.open_connection("127.0.0.1", int(sys.argv[1]))
    msg, n, t = b"x" * 100, 50000, time.perf_counter()
    for _ in range(n):
        w.write(msg); await w.drain()
        assert await r.readexactly(100) == msg
    print(f"{n} round trips, {(time.perf_counter() - t) / n * 1e6:.1f} us each")
    w.close()
asyncio.run(main())'

for mode in pdrun kernel; do
  use_mode "$mode"
  "${launch[@]}" python3 -c "$server" "$port" &
  bg_pids+=($!)
  wait_port "$port"
  echo "== $mode"
  [[ $mode == pdrun ]] && show_transport 1 &
  "${launch[@]}" python3 -c "$client" "$port"
  stop_servers
done
