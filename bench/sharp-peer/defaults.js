// sharp with its defaults, for the bench's compression table: `node defaults.js webp|png IN OUT`.
'use strict';

const sharp = require('sharp');

const [method, input, output] = process.argv.slice(2);
sharp.concurrency(1);
sharp(input)[method]().toFile(output).catch((error) => {
  console.error(error.message);
  process.exit(1);
});
