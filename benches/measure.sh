# Sourced by the benchmark scripts: `measure FILE` prints "wall_seconds peak_rss_mib"
# from a `/usr/bin/time -v -o FILE` report.
measure() {
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$1" \
         | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$1")
  echo "$wall $(echo "$rss / 1024" | bc -l)"
}
