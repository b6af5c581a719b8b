from ckd.bench.run import main

main()
