# Sourced by test.sh and check.sh: runs one named step, printing its name and
# how long it took. With `set -e` in the caller, a failing step stops the run.
step() {
  local name=$1; shift
  printf '\n\033[1m== %s\033[0m\n' "$name"
  local start=$SECONDS
  "$@"
  printf '\033[2m   (%s: %ss)\033[0m\n' "$name" $((SECONDS - start))
}
