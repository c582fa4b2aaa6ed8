#!/usr/bin/env bash
# nginx: a 1 KiB file (sendfile on, one worker) and wrk with 50 keep-alive
# connections for 5 s, first both under pdrun, then on kernel TCP.
# Needs: apt-get install -y nginx wrk; npm run build.
source "$(dirname "$0")/common.sh"
port=${PORT:-8091}
dir=$(mktemp -d); mkdir "$dir/www"; head -c 1024 /dev/zero | tr '\0' x > "$dir/www/1k.bin"
cat > "$dir/nginx.conf" <<CONF
$( [[ $(id -u) -eq 0 ]] && echo 'user root;' )
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
  access_log off; sendfile on; tcp_nopush on;
  keepalive_timeout 65; keepalive_requests 100000000;
  client_body_temp_path $dir/body; proxy_temp_path $dir/proxy; fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
  server { listen 127.0.0.1:$port; root $dir/www; }
}
CONF

for mode in pdrun kernel; do
  use_mode "$mode"
  "${launch[@]}" nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log" &
  bg_pids+=($!)
  wait_port "$port"
  echo "== $mode"
  [[ $mode == pdrun ]] && show_transport 1 &
  "${launch[@]}" wrk -t 1 -c 50 -d 5s "http://127.0.0.1:$port/1k.bin" | grep -E 'Requests/sec|Latency'
  stop_servers
done
rm -rf "$dir"
