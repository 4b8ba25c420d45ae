"""Quality metrics: the registry (FID, KID, PSNR, SSIM, L1, their numbers computed by torchmetrics), the Inception
network and the report.

Imports nothing of data, models or the run machinery: callers hand it pictures and features."""
