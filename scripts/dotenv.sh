#!/usr/bin/env bash
# Writes .env in the current folder (the project's, from `make run`) from its
# .env.example with a random ADMIN_TOKEN, readable by its owner only (0600), and
# prints the token once with a command to try. An existing .env is left alone, so
# the token stays what it was.
set -euo pipefail

[ -e .env ] && exit 0
umask 077
# 32 random bytes, base64url without padding: 43 characters.
token=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
staged=$(mktemp .env.XXXXXX)
sed "s|^ADMIN_TOKEN=.*|ADMIN_TOKEN=$token|" .env.example > "$staged"
grep -q "^ADMIN_TOKEN=$token\$" "$staged" || { rm -f "$staged"; echo "dotenv: .env.example has no ADMIN_TOKEN= line" >&2; exit 1; }
chmod 600 "$staged"
mv "$staged" .env

bind=$(sed -n 's/^BIND=//p' .env | head -n1)
cat <<MSG

  .env written (mode 0600) with a new random admin token, shown this once:

      ADMIN_TOKEN=$token

  Once the server is up, try:

      curl -s ${bind:-127.0.0.1:8080}/me -H "Authorization: Bearer $token"

MSG
