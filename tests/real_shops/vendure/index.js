// The Vendure 3 server the omnisync real-shop tests run against: sql.js (SQLite in memory,
// saved to VENDURE_DB), admin API on 127.0.0.1:VENDURE_PORT, telemetry off (set by the caller).
const { bootstrap } = require('@vendure/core');
const port = Number(process.env.VENDURE_PORT || 3000);
bootstrap({
  apiOptions: { hostname: '127.0.0.1', port, adminApiPath: 'admin-api', shopApiPath: 'shop-api' },
  authOptions: {
    tokenMethod: ['bearer', 'cookie'],
    superadminCredentials: {
      identifier: process.env.VENDURE_SUPERADMIN || 'superadmin',
      password: process.env.VENDURE_SUPERADMIN_PASSWORD || 'superadmin',
    },
    cookieOptions: { secret: 'omnisync-tests' },
  },
  dbConnectionOptions: {
    type: 'sqljs', synchronize: true, logging: false,
    location: process.env.VENDURE_DB, autoSave: true,
  },
  paymentOptions: { paymentMethodHandlers: [] },
  plugins: [],
}).catch(err => { console.error(err); process.exit(1); });
