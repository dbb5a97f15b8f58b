#!/bin/sh
# Runs once in the vault-init container: writes shala's secrets to KV v2 and
# creates the transit key (ed25519, shala-slc) that signs School Leaving
# Certificates: its private key never leaves Vault. Vault in
# dev mode mounts KV v2 at secret/ already. Idempotent.
set -eu
until vault status >/dev/null 2>&1; do sleep 1; done

# The Aadhaar key is made once and kept: a new one would orphan every stored
# Aadhaar hash and ciphertext.
aadhaar_key=$(vault kv get -field=aadhaar_key secret/shala 2>/dev/null || true)
if [ -z "$aadhaar_key" ]; then
  aadhaar_key=$(head -c 32 /dev/urandom | base64)
fi

vault kv put secret/shala \
  webhook_secret="${SHALA_WEBHOOK_SECRET}" \
  aadhaar_key="${aadhaar_key}" \
  operator_password="${SHALA_OPERATOR_PASSWORD}" \
  hasura_jwt_secret="${HASURA_GRAPHQL_JWT_SECRET}" \
  database_url="postgres://postgres:${POSTGRES_PASSWORD}@postgres:5432/shala?sslmode=disable"

vault secrets list | grep -q '^transit/' || vault secrets enable transit
vault read transit/keys/shala-slc >/dev/null 2>&1 || vault write -f transit/keys/shala-slc type=ed25519
echo "vault-init: secrets written to secret/shala, transit key shala-slc ready"
