/** Imports the module named by its argument and says what it got (cacheNpmModules test). */
try {
  const m = await import(Deno.args[0]);
  console.log(`loaded ${typeof m.default}`);
} catch (e) {
  console.log(`failed: ${(e as Error).message.split("\n").join(" ")}`);
}
