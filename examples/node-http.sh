#!/usr/bin/env bash
# Node.js: a plain http server and a keep-alive client making 20,000 requests
# (libuv: epoll), first both under pdrun, then on kernel TCP.
# Needs: Node >= 20; npm run build.
source "$(dirname "$0")/common.sh"
port=${PORT:-8191}

server='require("http").createServer((q, s) => s.end("hello\n")).listen(+process.argv[1], "127.0.0.1")'
client='
const http = require("http"), agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
const get = () => new Promise((ok, ko) => http.get({ host: "127.0.0.1", port: +process.argv[1], agent },
  (r) => { let b = ""; r.on("data", (d) => (b += d)); r.on("end", () => (b === "hello\n" ? ok() : ko(b))); }).on("error", ko));
(async () => {
  const t = process.hrtime.bigint(); let n = 0;
  await Promise.all(Array.from({ length: 8 }, async () => { while (n < 20000) { n++; await get(); } }));
  console.log(`${n} requests, ${(n / (Number(process.hrtime.bigint() - t) / 1e9)).toFixed(0)} requests/s`);
  agent.destroy();
})();'

for mode in pdrun kernel; do
  use_mode "$mode"
  "${launch[@]}" node -e "$server" "$port" &
  bg_pids+=($!)
  wait_port "$port"
  echo "== $mode"
  [[ $mode == pdrun ]] && show_transport 1 &
  "${launch[@]}" node -e "$client" "$port"
  stop_servers
done
