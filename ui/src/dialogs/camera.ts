// The add dialog's camera tab: a live preview while the app looks for a QR code in each frame.

import { Channel } from "@tauri-apps/api/core";

import * as api from "../api";
import { attempt, element } from "../dom";
import { added, optional } from "./add";

const cameraSelect = element<HTMLSelectElement>("camera-select");
const cameraPreview = element<HTMLImageElement>("camera-preview");
const cameraStatus = element("camera-status");
const cameraToggle = element<HTMLButtonElement>("camera-toggle");
let cameraScanning = false;
/** Set when the user leaves the camera tab before the scan reached the app. */
let cameraCancelled = false;
let cameraRun: Promise<void> = Promise.resolve();


/** Starts scanning (or returns the scan already running). */
export function startCamera(): Promise<void> {
  if (cameraScanning) return cameraRun;
  cameraScanning = true;
  cameraCancelled = false;
  cameraRun = scanWithCamera().finally(() => {
    cameraScanning = false;
  });
  return cameraRun;
}


async function scanWithCamera(): Promise<void> {
  if (cameraSelect.options.length === 0) {
    const cameras = (await attempt(api.listCameras)) ?? [];
    cameraSelect.replaceChildren(
      ...cameras.map((c) => Object.assign(document.createElement("option"), { value: String(c.index), textContent: c.name })),
    );
    if (cameras.length === 0) {
      cameraStatus.textContent = "No camera found. Open a picture of the QR code in the QR image tab instead.";
      cameraToggle.hidden = true;
      return;
    }
  }
  cameraToggle.hidden = false;
  cameraToggle.textContent = "Stop";
  cameraStatus.textContent = "Hold the QR code up to the camera…";
  const preview = new Channel<string>();
  preview.onmessage = (frame) => {
    const next = new Image();
    next.src = frame;
    void next
      .decode()
      .then(() => {
        if (!cameraScanning) return;
        cameraPreview.src = frame;
        cameraPreview.hidden = false;
      })
      .catch(() => undefined);
  };
  if (cameraCancelled) return;
  const result = await attempt(
    () => api.scanCamera(Number(cameraSelect.value), optional("add-group"), preview),
    element("add-error"),
  );
  cameraToggle.textContent = "Scan again";
  if (result) await added(result);
  else if (result === null) cameraStatus.textContent = "Stopped.";
  else cameraStatus.textContent = "";
}

/** Stops the preview and any scan. */
export async function stopCamera(): Promise<void> {
  cameraPreview.hidden = true;
  cameraPreview.removeAttribute("src");
  if (!cameraScanning) return;
  cameraCancelled = true;
  await api.stopCamera().catch(() => undefined);
}

cameraToggle.addEventListener("click", () => void (cameraScanning ? stopCamera() : startCamera()));
cameraSelect.addEventListener("change", async () => {
  await stopCamera();
  await cameraRun;
  void startCamera();
});
