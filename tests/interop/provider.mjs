// oidc-provider test issuer for the authpi-idp interoperability tests.
//
// Usage: node provider.mjs --port PORT --keys FILE [--layout authpi|default]
//
// Prints exactly one line `READY http://127.0.0.1:PORT` to stdout once it listens, then runs until
// stdin closes, or SIGTERM/SIGINT arrives. Everything else (oidc-provider notices, request errors)
// goes to stderr. See README.md for the clients, the account and the redirect chain.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

// oidc-provider prints its configuration notices with console.info (stdout). Stdout is reserved
// for the single READY line, so route every console method to stderr before anything runs.
console.info = console.error;
console.log = console.error;
console.debug = console.error;

const { default: Provider, errors } = await import('oidc-provider');

// ---------------------------------------------------------------------------------------------
// Command line

function usage(message) {
  process.stderr.write(`provider.mjs: ${message}\n`
    + 'usage: node provider.mjs --port PORT --keys FILE [--layout authpi|default] [--log-requests]\n');
  process.exit(2);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      port: { type: 'string' },
      keys: { type: 'string' },
      layout: { type: 'string', default: 'authpi' },
      'log-requests': { type: 'boolean', default: false },
    },
    strict: true,
  }));
} catch (err) {
  usage(err.message);
}
if (args.port === undefined || !/^\d{1,5}$/.test(args.port) || Number(args.port) > 65535) {
  usage('--port must be an integer in 0..65535 (0 = ephemeral)');
}
if (!args.keys) usage('--keys FILE is required');
if (!['authpi', 'default'].includes(args.layout)) usage('--layout must be authpi or default');

// ---------------------------------------------------------------------------------------------
// Signing keys: a JWKS with private keys, created on first use (RS256, ES256, EdDSA).

function generateJwks() {
  const make = (type, options, alg) => {
    const { privateKey } = crypto.generateKeyPairSync(type, options);
    return { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), alg, use: 'sig' };
  };
  return {
    keys: [
      make('rsa', { modulusLength: 2048 }, 'RS256'),
      make('ec', { namedCurve: 'P-256' }, 'ES256'),
      make('ed25519', {}, 'EdDSA'),
    ],
  };
}

function loadOrCreateJwks(file) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
    const jwks = generateJwks();
    // 'wx': never overwrite a file that appeared meanwhile; 0600: private keys.
    fs.writeFileSync(file, `${JSON.stringify(jwks, null, 2)}\n`, { flag: 'wx', mode: 0o600 });
    return jwks;
  }
  return JSON.parse(text);
}

const jwks = loadOrCreateJwks(args.keys);

// ---------------------------------------------------------------------------------------------
// The one test account, with AuthPI-shaped organization memberships.

const ACCOUNT_ID = 'usr_alice';
const ORGANIZATIONS = [
  {
    id: 'org_acme', title: 'Founder', scopes: ['owner', 'projects:**'], joined_at: 1767312000,
  },
  {
    id: 'org_globex', title: null, scopes: ['projects:read', 'users:read'], joined_at: 1767398400,
  },
];
const ACCOUNT_CLAIMS = {
  email: 'alice@example.com',
  email_verified: true,
  name: 'Alice Example',
  organizations: ORGANIZATIONS,
};

// The `org` authorization parameter, remembered per grant. Every authorization gets a fresh
// grant (see loadExistingGrant), so codes, refresh tokens and access tokens of one login all see
// the org that login asked for.
const orgByGrant = new Map();

function orgIdFor(token) {
  return token?.grantId ? orgByGrant.get(token.grantId) : undefined;
}

async function findAccount(_ctx, sub, token) {
  if (sub !== ACCOUNT_ID) return undefined;
  const orgId = orgIdFor(token);
  return {
    accountId: sub,
    // The provider filters these by the granted scopes (see `claims` below).
    async claims() {
      return { sub, ...ACCOUNT_CLAIMS, ...(orgId ? { org_id: orgId } : {}) };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Resource server

const API_RESOURCE = 'https://api.example.com';
const API_SCOPES = 'projects:read projects:write';

const TEN_MINUTES = 10 * 60;
const SEVEN_DAYS = 7 * 24 * 60 * 60;

// ---------------------------------------------------------------------------------------------
// Clients

const WEB_REDIRECT = 'http://127.0.0.1:7777/callback';
const WEB_LOGOUT = 'http://127.0.0.1:7777/logged-out';
const CODE_GRANTS = ['authorization_code', 'refresh_token'];

const webClient = (clientId, extra) => ({
  client_id: clientId,
  client_secret: `${clientId}_secret`,
  application_type: 'web',
  grant_types: CODE_GRANTS,
  response_types: ['code'],
  redirect_uris: [WEB_REDIRECT],
  post_logout_redirect_uris: [WEB_LOGOUT],
  token_endpoint_auth_method: 'client_secret_basic',
  id_token_signed_response_alg: 'RS256',
  ...extra,
});

// OIDC Back-Channel Logout 1.0: `client_bcl` is told (a POSTed logout_token) when a session
// it took part in ends here. The receiver is the Rust test tests/backchannel.rs, on a fixed
// loopback port because clients are static (the test waits for the port if it is busy).
const BACKCHANNEL_LOGOUT_URI = 'http://127.0.0.1:7778/backchannel-logout';

const clients = [
  webClient('client_bcl', {
    id_token_signed_response_alg: 'ES256',
    backchannel_logout_uri: BACKCHANNEL_LOGOUT_URI,
    backchannel_logout_session_required: true,
  }),
  webClient('client_basic'),
  webClient('client_post', { token_endpoint_auth_method: 'client_secret_post' }),
  webClient('client_rs256', { id_token_signed_response_alg: 'RS256' }),
  webClient('client_es256', { id_token_signed_response_alg: 'ES256' }),
  webClient('client_eddsa', { id_token_signed_response_alg: 'EdDSA' }),
  {
    client_id: 'client_public',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: CODE_GRANTS,
    response_types: ['code'],
    // Native + http loopback: any port is accepted at /authorize (RFC 8252 section 7.3).
    redirect_uris: ['http://127.0.0.1/callback'],
    post_logout_redirect_uris: ['http://127.0.0.1/logged-out'],
    id_token_signed_response_alg: 'ES256',
  },
  {
    // RFC 8628 device authorization grant (`authpi-idp login --device`): a public native client.
    client_id: 'client_device',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
    response_types: [],
    redirect_uris: [],
    id_token_signed_response_alg: 'ES256',
  },
  {
    client_id: 'client_m2m',
    client_secret: 'client_m2m_secret',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  },
];

// ---------------------------------------------------------------------------------------------
// Routes: AuthPI's layout (derivable from the issuer) or oidc-provider's own defaults.

const routes = args.layout === 'authpi'
  ? {
    authorization: '/authorize',
    token: '/token',
    userinfo: '/userinfo',
    revocation: '/revoke',
    introspection: '/introspect',
    end_session: '/logout',
    jwks: '/jwks.json',
  }
  : {};

// ---------------------------------------------------------------------------------------------
// Listen first, so that port 0 resolves to the real port before the issuer is fixed.

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(args.port), '127.0.0.1', resolve);
});
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const configuration = {
  clients,
  jwks,
  findAccount,
  routes,
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },

  // AuthPI: authorization code only, client_secret_basic/post or none at the token endpoint.
  responseTypes: ['code'],
  clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'none'],

  scopes: ['openid', 'offline_access', 'email', 'profile'],
  claims: {
    acr: null,
    auth_time: null,
    iss: null,
    sid: null,
    openid: ['sub', 'organizations', 'org_id'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  // Put every granted claim in the ID token too (AuthPI does), not only in userinfo.
  conformIdTokenClaims: false,
  extraParams: ['org'],

  enabledJWA: {
    idTokenSigningAlgValues: ['RS256', 'ES256', 'EdDSA'],
  },

  pkce: { required: () => true },

  // Refresh tokens for every code grant of a client allowed to refresh, offline_access or not;
  // every refresh rotates, and reusing a rotated-away refresh token revokes the whole grant.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,

  // A fresh grant per authorization (no silent reuse of an earlier consent), so that each login
  // passes the interaction and records its own `org`.
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId;
    return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
  },

  extraTokenClaims: async (_ctx, token) => {
    if (!token.accountId) return undefined;
    const orgId = orgIdFor(token);
    return { organizations: ORGANIZATIONS, ...(orgId ? { org_id: orgId } : {}) };
  },

  ttl: {
    AccessToken: TEN_MINUTES,
    ClientCredentials: TEN_MINUTES,
    AuthorizationCode: 60,
    IdToken: 60 * 60,
    RefreshToken: SEVEN_DAYS,
    Grant: SEVEN_DAYS,
    Session: SEVEN_DAYS,
    Interaction: TEN_MINUTES,
  },

  // oidc-provider refuses outgoing requests to special-use addresses (SSRF protection), and
  // 127.0.0.1 is one. Lift that for the test's back-channel logout receiver only.
  fetch: (url, options) => {
    if (String(url) === BACKCHANNEL_LOGOUT_URI) {
      const { dispatcher: _ssrfGuard, ...rest } = options;
      return fetch(url, rest);
    }
    return fetch(url, options);
  },

  // Errors that cannot be redirected (bad client_id or redirect_uri) as JSON, not an HTML page.
  renderError: async (ctx, out) => {
    ctx.type = 'json';
    ctx.body = out;
  },

  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // Not part of AuthPI (yet); the CLI's `login --device` is tested here.
    deviceFlow: { enabled: true },
    introspection: {
      enabled: true,
      // AuthPI: a client only introspects its own tokens; anything else is {"active": false}.
      allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
    },
    revocation: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      // Minimal pages, easy to scrape: GET /logout answers 200 with a form holding `xsrf`;
      // POST /logout/confirm (xsrf, logout=yes) ends the session and redirects (303).
      logoutSource: async (ctx, form) => {
        ctx.type = 'html';
        ctx.body = '<!DOCTYPE html><html><head><title>Sign out</title></head><body>'
          + `${form}<button type="submit" form="op.logoutForm" name="logout" value="yes">`
          + 'Sign out</button></body></html>';
      },
      postLogoutSuccessSource: async (ctx) => {
        ctx.type = 'html';
        ctx.body = '<!DOCTYPE html><html><head><title>Signed out</title></head>'
          + '<body>Signed out</body></html>';
      },
    },
    userinfo: { enabled: true },
    backchannelLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: async () => false,
      getResourceServerInfo: async (_ctx, resource) => {
        if (resource !== API_RESOURCE) throw new errors.InvalidTarget();
        return {
          scope: API_SCOPES,
          audience: API_RESOURCE,
          accessTokenTTL: TEN_MINUTES,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
    // Not part of AuthPI: keep them off so that discovery does not advertise them.
    dPoP: { enabled: false },
    pushedAuthorizationRequests: { enabled: false },
  },
};

const provider = new Provider(issuer, configuration);

// ---------------------------------------------------------------------------------------------
// Browserless interaction: GET /interaction/:uid finishes whatever prompt is pending for
// usr_alice (login, then consent granting everything requested) and redirects on (303).

async function finishInteraction(ctx) {
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const { prompt, params } = details;
  let result;

  if (params.org !== undefined && !ORGANIZATIONS.some((org) => org.id === params.org)) {
    result = {
      error: 'access_denied',
      error_description: 'the user is not a member of the requested organization',
    };
  } else if (prompt.name === 'login') {
    result = { login: { accountId: ACCOUNT_ID } };
  } else if (prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: ACCOUNT_ID, clientId: params.client_id });
    const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = prompt.details;
    if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
    if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    orgByGrant.set(grantId, params.org);
    result = { consent: { grantId } };
  } else {
    result = { error: 'access_denied', error_description: `unsupported prompt ${prompt.name}` };
  }

  const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, {
    mergeWithLastSubmission: false,
  });
  ctx.redirect(returnTo);
  ctx.status = 303;
}

// --log-requests: one stderr line per request, `request: METHOD PATH STATUS` (the path only, never
// the query, so no code or token is printed). The Rust harness counts JWKS fetches with it.
if (args['log-requests']) {
  provider.use(async (ctx, next) => {
    try {
      await next();
    } finally {
      process.stderr.write(`request: ${ctx.method} ${ctx.path} ${ctx.status}\n`);
    }
  });
}

provider.use(async (ctx, next) => {
  const match = /^\/interaction\/([A-Za-z0-9_-]+)$/.exec(ctx.path);
  if (!match || ctx.method !== 'GET') return next();
  try {
    return await finishInteraction(ctx);
  } catch (err) {
    ctx.status = 400;
    ctx.type = 'text/plain';
    ctx.body = `interaction failed: ${err.name}\n`;
    return undefined;
  }
});

// Debugging aid: why a request failed (stderr only; descriptions carry no token values).
provider.on('server_error', (_ctx, err) => {
  process.stderr.write(`server_error: ${err.stack}\n`);
});
for (const event of ['grant.error', 'authorization.error', 'userinfo.error', 'introspection.error',
  'revocation.error', 'end_session.error', 'jwks.error', 'discovery.error',
  'backchannel.error']) {
  provider.on(event, (_ctx, err) => {
    const detail = err.error_detail ?? err.cause?.message;
    process.stderr.write(`${event}: ${err.error ?? err.name}: ${err.error_description ?? err.message}`
      + `${detail ? ` (${detail})` : ''}\n`);
  });
}

server.on('request', provider.callback());
process.stdout.write(`READY ${issuer}\n`);

// ---------------------------------------------------------------------------------------------
// Lifetime: stop when the parent goes away (stdin closes) or asks (SIGTERM/SIGINT).

let stopping = false;
function stop(reason) {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`provider.mjs: stopping (${reason})\n`);
  server.close();
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 200).unref();
}
process.stdin.on('end', () => stop('stdin closed'));
process.stdin.on('close', () => stop('stdin closed'));
process.stdin.on('error', () => stop('stdin error'));
process.stdin.resume();
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
