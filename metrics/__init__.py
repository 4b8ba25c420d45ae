"""Quality metrics: the registry and arithmetic (FID, KID, PSNR, SSIM, L1), the Inception network and the report.

Imports nothing of data, models or the run machinery: callers hand it pictures and features."""
