// Draw a QR code on a canvas with the vendored qrcode-generator (vendor/qrcode-generator, a global `qrcode`).

const QUIET_ZONE = 4;  // modules of white around the symbol, as the QR standard asks

/**
 * Draw `text` on `canvas`, crisp: whole device pixels per module. A Xinma token uses the alphanumeric mode
 * at level M (version 6, docs/code-format.md); anything else (an invite URL) is encoded as bytes.
 */
export function drawQR(canvas, text, { cssSize = 300, mode } = {}) {
  const qr = window.qrcode(0, 'M');
  qr.addData(text, mode || (/^[0-9A-Z $%*+\-./:]*$/.test(text) ? 'Alphanumeric' : 'Byte'));
  qr.make();
  const modules = qr.getModuleCount();
  const total = modules + 2 * QUIET_ZONE;
  const ratio = Math.max(1, window.devicePixelRatio || 1);
  const scale = Math.max(2, Math.floor((cssSize * ratio) / total));
  canvas.width = canvas.height = total * scale;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = '#000';
  for (let r = 0; r < modules; r++) {
    for (let c = 0; c < modules; c++) {
      if (qr.isDark(r, c)) ctx.fillRect((c + QUIET_ZONE) * scale, (r + QUIET_ZONE) * scale, scale, scale);
    }
  }
  return modules;
}
