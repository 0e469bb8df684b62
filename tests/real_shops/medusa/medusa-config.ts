import { loadEnv, defineConfig } from "@medusajs/framework/utils"
loadEnv(process.env.NODE_ENV || "development", process.cwd())
module.exports = defineConfig({
  projectConfig: {
    databaseUrl: process.env.DATABASE_URL,
    http: {
      storeCors: process.env.STORE_CORS || "http://127.0.0.1:8000",
      adminCors: process.env.ADMIN_CORS || "http://127.0.0.1:9000",
      authCors: process.env.AUTH_CORS || "http://127.0.0.1:9000",
      jwtSecret: process.env.JWT_SECRET || "supersecret",
      cookieSecret: process.env.COOKIE_SECRET || "supersecret",
      jwtExpiresIn: process.env.JWT_EXPIRES_IN || "1d",
    },
  },
  admin: { disable: true },
})
