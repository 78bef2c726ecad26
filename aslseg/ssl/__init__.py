"""Stage I: the semi-supervised segmentation network SS(.) -- slice data, the SSL methods, training, evaluation
and checkpoints. The U-Net, augmentation and batch sampling it shares with AN and the liver model are in
aslseg/seg2d/."""
