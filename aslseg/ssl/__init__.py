"""Stage I: the semi-supervised segmentation network SS(.) -- data, sampling, augmentation, training, prediction."""
