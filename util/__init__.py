"""Small helpers at the ground of the layout (errors, logging, images, files, progress, ranges, colour);
they import nothing of ours outside util."""
